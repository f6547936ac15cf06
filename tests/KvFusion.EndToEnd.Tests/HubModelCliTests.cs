namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// <c>kvfusion generate --model hf:OWNER/NAME</c> as a user runs it, against a loopback hub (<see cref="FakeHub"/>,
/// pointed at by <c>HF_ENDPOINT</c>) serving ../shared/models/tiny-pydocs: the model is downloaded into the cache and
/// generates the same text as the local folder; offline, the cached copy serves; an unknown repo is a clear error.
/// </summary>
public sealed class HubModelCliTests : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(3);
    private readonly TempDirectory _work = new();

    public void Dispose() => _work.Dispose();

    [SkippableFact]
    public async Task A_hub_model_downloads_into_the_cache_generates_like_the_local_folder_and_serves_offline_from_the_cache()
    {
        var local = SharedModels.Path("tiny-pydocs");
        var cache = _work.Combine("cache");
        SampleRun fromHub;
        await using (var hub = await FakeHub.StartAsync(local))
        {
            fromHub = await GenerateAsync("hf:kvfusion/tiny-pydocs", Environment(hub.Endpoint, cache));
            Assert.True(fromHub.ExitCode == 0, fromHub.Describe());
            Assert.False(string.IsNullOrWhiteSpace(fromHub.StandardOutput), fromHub.Describe());
            Assert.True(hub.Requests > 0);
        }

        var fromFolder = await GenerateAsync(local, Environment(null, cache));
        Assert.True(fromFolder.ExitCode == 0, fromFolder.Describe());
        Assert.Equal(fromFolder.StandardOutput, fromHub.StandardOutput);
        Assert.NotEmpty(Directory.GetFiles(cache, "config.json", SearchOption.AllDirectories));

        // The hub is gone: offline, the cached snapshot is used without a request.
        var offline = Environment(new Uri("http://127.0.0.1:9/"), cache);
        offline["HF_HUB_OFFLINE"] = "1";
        var fromCache = await GenerateAsync("hf:kvfusion/tiny-pydocs", offline);
        Assert.True(fromCache.ExitCode == 0, fromCache.Describe());
        Assert.Equal(fromHub.StandardOutput, fromCache.StandardOutput);
    }

    [SkippableFact]
    public async Task An_unknown_hub_repo_fails_with_a_message_naming_it_and_leaves_no_model_in_the_cache()
    {
        var cache = _work.Combine("cache");
        await using var hub = await FakeHub.StartAsync(SharedModels.Path("tiny-pydocs"));

        var run = await GenerateAsync("hf:kvfusion/no-such-model", Environment(hub.Endpoint, cache));

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("kvfusion/no-such-model was not found", run.StandardError, StringComparison.Ordinal);
        Assert.False(Directory.Exists(cache) && Directory.GetFiles(cache, "config.json", SearchOption.AllDirectories).Length > 0);
    }

    [SkippableFact]
    public async Task An_unreachable_hub_with_nothing_cached_says_what_to_do()
    {
        var run = await GenerateAsync("hf:kvfusion/tiny-pydocs", Environment(new Uri("http://127.0.0.1:9/"), _work.Combine("cache")));

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("Could not reach the hub", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_OFFLINE", run.StandardError, StringComparison.Ordinal);
    }

    private Task<SampleRun> GenerateAsync(string model, Dictionary<string, string> environment) =>
        SampleProcess.RunAsync(
            SampleProcess.Dotnet,
            ["exec", Path.Combine(AppContext.BaseDirectory, "kvfusion.dll"), "generate", "--model", model, "--prompt", "def read_file(path):", "--max-tokens", "8"],
            RunTimeout,
            _work.Path,
            environment);

    private static Dictionary<string, string> Environment(Uri? endpoint, string cache)
    {
        var environment = new Dictionary<string, string> { ["KVFUSION_CACHE"] = cache, ["HF_HUB_OFFLINE"] = "0" };
        if (endpoint is not null)
        {
            environment["HF_ENDPOINT"] = endpoint.ToString();
        }

        return environment;
    }
}
