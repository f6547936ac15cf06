using System.Net.Http.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.EndToEnd.Tests;

/// <summary>SIGTERM, as systemd or Kubernetes stop a service: the host shuts down cleanly and what it stored is there on the next start.</summary>
public sealed class GracefulShutdownTests
{
    [SkippableFact]
    public async Task After_sigterm_the_server_exits_with_0_and_the_next_one_on_the_same_folder_has_the_chunk()
    {
        using var store = new TempDirectory();
        ChunkInfo chunk;
        await using (var first = await ServeProcess.StartAsync(store.Path))
        {
            using var http = first.CreateHttpClient();
            chunk = await Http.CreateChunkAsync(http, Http.UniqueText("Shutdown keeps what was stored."));

            Assert.True(await first.TerminateAsync(), "the server did not exit within 30 s of SIGTERM\n" + first.Describe());
            Assert.True(first.ExitCode == 0, $"exit code {first.ExitCode}\n{first.Describe()}");
            Assert.DoesNotContain("Unhandled exception", first.StandardError, StringComparison.Ordinal);
        }

        await using var second = await ServeProcess.StartAsync(store.Path);
        using var again = second.CreateHttpClient();
        var found = await again.GetFromJsonAsync($"v1/chunks/{chunk.Id}", KvFusionJsonContext.Default.ChunkInfo);
        Assert.Equal(chunk.Tokens, found!.Tokens);
        Assert.Equal(chunk.Bytes, found.Bytes);
    }
}
