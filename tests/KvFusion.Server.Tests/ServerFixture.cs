namespace KvFusion.Server.Tests;

/// <summary>
/// One server per test class. The factory is created on first use inside a test, so a missing ../shared skips the
/// test (the factory throws SkipException) instead of failing the fixture.
/// </summary>
public class ServerFixture : IDisposable
{
    private readonly Lazy<KvFusionServerFactory> _factory;

    /// <summary>A server with the default settings (no keys, loopback clients only).</summary>
    public ServerFixture()
        : this(null)
    {
    }

    /// <summary>A server with <paramref name="settings"/> over the defaults.</summary>
    protected ServerFixture(IReadOnlyDictionary<string, string?>? settings) =>
        _factory = new Lazy<KvFusionServerFactory>(() => new KvFusionServerFactory(settings));

    /// <summary>The server.</summary>
    public KvFusionServerFactory Factory => _factory.Value;

    /// <summary>A client of the server, with <paramref name="apiKey"/> as bearer token when given.</summary>
    public HttpClient Client(string? apiKey = null) => Factory.CreateHttpClient(apiKey);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_factory.IsValueCreated)
        {
            _factory.Value.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}
