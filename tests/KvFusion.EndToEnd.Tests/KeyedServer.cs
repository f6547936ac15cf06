namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// One <c>kvfusion serve</c> with a RocksDB folder and one API key, shared by the tests of a collection (starting a
/// process per test would dominate the run). A missing ../shared is kept as the skip each test then reports.
/// </summary>
public sealed class KeyedServer : IAsyncLifetime
{
    /// <summary>The one key the server accepts (tenant <see cref="Tenant"/>).</summary>
    public const string ApiKey = "e2e-test-key-0123456789abcdef";

    /// <summary>The key's tenant.</summary>
    public const string Tenant = "e2e";

    // A path, not a TempDirectory: the folder must outlive the server, which DisposeAsync stops first.
    private readonly string _store = Path.Combine(Path.GetTempPath(), "kvfusion-tests", Guid.NewGuid().ToString("N"));
    private ServeProcess? _server;
    private SkipException? _skip;

    /// <summary>The running server; skips the calling test when ../shared is absent.</summary>
    public ServeProcess Server => _server ?? throw (Exception?)_skip ?? new InvalidOperationException("the server is not started");

    /// <summary>The served model's id (its folder name).</summary>
    public static string ModelId => "tiny-pydocs";

    public async Task InitializeAsync()
    {
        try
        {
            _server = await ServeProcess.StartAsync(_store, new Dictionary<string, string>
            {
                ["KvFusion__Auth__Keys__0__Key"] = ApiKey,
                ["KvFusion__Auth__Keys__0__Tenant"] = Tenant,
            });
        }
        catch (SkipException e)
        {
            _skip = e;
        }
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (Directory.Exists(_store))
        {
            Directory.Delete(_store, recursive: true);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class KeyedServers : ICollectionFixture<KeyedServer>
{
    public const string Name = "keyed kvfusion serve";
}
