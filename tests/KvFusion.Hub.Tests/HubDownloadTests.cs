using System.Security.Cryptography;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Hub.Tests;

public sealed class HubDownloadTests
{
    private static string TinyModel => SharedModels.Path("tiny-pydocs");

    private static ModelDownloadOptions Options(FakeHub hub, TempDirectory cache, bool offline = false, string? token = null) =>
        new() { Endpoint = hub.Endpoint, CacheDirectory = cache.Path, Offline = offline, Token = token };

    private static string Hash(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    private static void AssertSameModelFiles(string expected, string actual)
    {
        foreach (var name in new[] { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
        {
            Assert.Equal(Hash(Path.Combine(expected, name)), Hash(Path.Combine(actual, name)));
        }

        Assert.False(File.Exists(Path.Combine(actual, "golden.json")), "files a model directory does not need are not downloaded");
        Assert.False(File.Exists(Path.Combine(actual, "tiny-pydocs-f16.gguf")));
    }

    [SkippableFact]
    public async Task Download_then_load_gives_the_same_model_as_the_local_directory()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        var reports = new List<ModelDownloadProgress>();
        var dir = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache), new SyncProgress(reports.Add));

        Assert.StartsWith(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs", "snapshots"), dir, StringComparison.Ordinal);
        AssertSameModelFiles(TinyModel, dir);
        Assert.Equal(reports[^1].TotalLength, reports[^1].TotalBytes);
        Assert.Equal(new FileInfo(Path.Combine(TinyModel, "model.safetensors")).Length + 535 + 66 + 261050 + 189, reports[^1].TotalLength);
        Assert.Equal(Path.GetFileName(dir), File.ReadAllText(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs", "refs", "main")));

        using var backend = new CpuBackend(1);
        using var downloaded = TransformerModel.Load(dir, backend);
        using var local = TransformerModel.Load(TinyModel, backend);
        Assert.Equal(local.Config with { EosTokenIds = [] }, downloaded.Config with { EosTokenIds = [] });
        Assert.Equal(local.Config.EosTokenIds, downloaded.Config.EosTokenIds);
    }

    [SkippableFact]
    public async Task Second_resolve_uses_the_cache_without_the_network()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        var first = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache));
        var served = hub.Requests;

        var second = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache));

        Assert.Equal(first, second);
        Assert.Equal(served, hub.Requests);
    }

    [SkippableFact]
    public async Task Two_concurrent_resolves_share_one_snapshot()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();

        var both = await Task.WhenAll(
            Task.Run(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache))),
            Task.Run(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache))));

        Assert.Equal(both[0], both[1]);
        Assert.Single(Directory.GetDirectories(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs", "snapshots")));
        AssertSameModelFiles(TinyModel, both[0]);
    }

    [SkippableFact]
    public async Task An_interrupted_download_resumes_from_the_partial_file()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        hub.CutNextDownloads(1);

        var broken = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache)));
        Assert.Equal(ModelDownloadErrorKind.Network, broken.Kind);
        Assert.Contains("again to resume", broken.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs", "snapshots")));

        var dir = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache));

        var resumed = Assert.Single(hub.RangeRequests);
        Assert.StartsWith("model.safetensors:", resumed, StringComparison.Ordinal);
        Assert.NotEqual("model.safetensors:0", resumed);
        AssertSameModelFiles(TinyModel, dir);
    }

    [SkippableFact]
    public async Task A_corrupt_byte_is_an_integrity_error_and_leaves_no_snapshot()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        hub.CorruptFile = "model.safetensors";

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache)));

        Assert.Equal(ModelDownloadErrorKind.Integrity, e.Kind);
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("sha256", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs", "snapshots")));
        Assert.Empty(Directory.GetFiles(Path.Combine(cache.Path, "models--kvfusion--tiny-pydocs"), "*.safetensors*", SearchOption.AllDirectories));
    }

    [SkippableFact]
    public async Task A_corrupt_small_file_fails_its_git_blob_hash()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        hub.CorruptFile = "tokenizer.json";

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache)));

        Assert.Equal(ModelDownloadErrorKind.Integrity, e.Kind);
        Assert.Contains("git blob sha1", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_unknown_repository_is_not_found()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/no-such-model", Options(hub, cache)));

        Assert.Equal(ModelDownloadErrorKind.NotFound, e.Kind);
        Assert.Contains("kvfusion/no-such-model was not found", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_unknown_revision_is_not_found()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs@v9", Options(hub, cache)));

        Assert.Equal(ModelDownloadErrorKind.NotFound, e.Kind);
        Assert.Contains("no revision 'v9'", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_gated_model_without_a_token_is_unauthorized_and_with_it_downloads()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        hub.RequiredToken = "hf_secret";

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache)));
        Assert.Equal(ModelDownloadErrorKind.Unauthorized, e.Kind);
        Assert.Contains("gated", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);

        var dir = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache, token: "hf_secret"));
        AssertSameModelFiles(TinyModel, dir);
    }

    [SkippableFact]
    public async Task Offline_without_a_cached_snapshot_says_what_to_do()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();

        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache, offline: true)));

        Assert.Equal(ModelDownloadErrorKind.Offline, e.Kind);
        Assert.Contains("HF_HUB_OFFLINE", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, hub.Requests);
    }

    [SkippableFact]
    public async Task Offline_with_a_cached_snapshot_uses_it()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        var online = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache));
        var served = hub.Requests;

        var offline = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", new ModelDownloadOptions { Endpoint = hub.Endpoint, CacheDirectory = cache.Path, Offline = true, Refresh = true });

        Assert.Equal(online, offline);
        Assert.Equal(served, hub.Requests);
    }

    [SkippableFact]
    public async Task An_unreachable_hub_is_a_network_error_naming_the_offline_switch()
    {
        Uri endpoint;
        await using (var hub = await FakeHub.StartAsync(TinyModel))
        {
            endpoint = hub.Endpoint;
        }

        using var cache = new TempDirectory();
        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", new ModelDownloadOptions { Endpoint = endpoint, CacheDirectory = cache.Path }));

        Assert.Equal(ModelDownloadErrorKind.Network, e.Kind);
        Assert.Contains("HF_HUB_OFFLINE=1", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_pinned_revision_downloads_that_revision()
    {
        await using var hub = await FakeHub.StartAsync(TinyModel);
        using var cache = new TempDirectory();
        var oldConfig = File.ReadAllBytes(Path.Combine(TinyModel, "generation_config.json"))[..^1];
        var oldCommit = hub.AddRevision("v0", TinyModel, new Dictionary<string, byte[]> { ["generation_config.json"] = oldConfig });

        var tagged = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs@v0", Options(hub, cache));
        var bySha = await ModelSource.ResolveAsync($"hf:kvfusion/tiny-pydocs@{oldCommit}", Options(hub, cache));
        var main = await ModelSource.ResolveAsync("hf:kvfusion/tiny-pydocs", Options(hub, cache));

        Assert.Equal(oldCommit, Path.GetFileName(tagged));
        Assert.Equal(tagged, bySha);
        Assert.NotEqual(tagged, main);
        Assert.Equal(oldConfig, File.ReadAllBytes(Path.Combine(tagged, "generation_config.json")));
        AssertSameModelFiles(TinyModel, main);
    }

    [Fact]
    public async Task A_plain_path_is_returned_as_is()
    {
        Assert.False(ModelSource.IsHubReference("../shared/models/tiny-pydocs"));
        Assert.Equal("some/dir", await ModelSource.ResolveAsync("some/dir", new ModelDownloadOptions { Offline = true }));
    }

    [Fact]
    public async Task A_bad_reference_is_an_invalid_reference_error()
    {
        var e = await Assert.ThrowsAsync<ModelDownloadException>(() => ModelSource.ResolveAsync("hf:just-a-name", new ModelDownloadOptions { Offline = true }));
        Assert.Equal(ModelDownloadErrorKind.InvalidReference, e.Kind);
        Assert.Contains("OWNER/NAME", e.Message, StringComparison.Ordinal);
    }

    private sealed class SyncProgress(Action<ModelDownloadProgress> report) : IProgress<ModelDownloadProgress>
    {
        public void Report(ModelDownloadProgress value) => report(value);
    }
}
