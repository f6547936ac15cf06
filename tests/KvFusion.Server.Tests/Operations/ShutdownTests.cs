using System.Net;

namespace KvFusion.Server.Tests.Operations;

public sealed class ShutdownTests
{
    [SkippableFact]
    public async Task A_chunk_written_before_shutdown_is_found_by_the_next_server_over_the_same_folder()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?>
        {
            ["Storage:RocksDb:Path"] = data.Combine("rocksdb"),
            ["KvFusion:DocumentsPath"] = data.Combine("documents"),
        };
        string id;
        using (var first = new KvFusionServerFactory(settings))
        {
            using var client = first.CreateHttpClient();
            id = (await client.CreateChunkAsync(Api.UniqueText("shutdown"))).GetProperty("id").GetString()!;
        }

        // Disposing stopped the host: the write-behind queue to RocksDB must have drained by now.
        using var second = new KvFusionServerFactory(settings);
        using var again = second.CreateHttpClient();
        using var response = await again.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var kv = await again.GetAsync($"/v1/chunks/{id}/kv");
        Assert.Equal(HttpStatusCode.OK, kv.StatusCode);
    }
}
