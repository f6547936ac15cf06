using System.Net;
using System.Text.Json;

namespace KvFusion.Server.Tests.Concurrency;

/// <summary>
/// Admission by KV memory: while running requests hold the budget, another waits and then gets 503 with Retry-After;
/// one that could never fit gets 400 at once; neither holds anything afterwards.
/// </summary>
public sealed class KvMemoryAdmissionTests(KvMemoryAdmissionTests.Server server) : IClassFixture<KvMemoryAdmissionTests.Server>
{
    private const string Prompt = "Write a long Python module with many functions.";

    // A tiny-pydocs session holds 6 KiB of float32 K/V per slot, in steps of 256 slots: 12 MB admit the long stream
    // below (1536 slots, 9.4 MB) but not a second request of 1000 tokens beside it (1024 slots), and never one of 2048.
    public sealed class Server() : ServerFixture(new Dictionary<string, string?>
    {
        ["KvFusion:Queue:MaxActive"] = "4",
        ["KvFusion:Queue:Capacity"] = "4",
        ["KvFusion:Queue:MaxKvBytes"] = "12000000",
        ["KvFusion:Queue:KvWaitSeconds"] = "1",
    });

    [SkippableFact]
    public async Task A_request_that_finds_the_kv_memory_full_waits_then_gets_503_with_retry_after()
    {
        using var client = server.Client();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        // Not read on: once the stream's buffers fill, the server blocks writing it and the request keeps its memory.
        var body = Api.Chat(Prompt, maxTokens: 1500);
        body["stream"] = true;
        using (var slow = await client.SendStreamingAsync("/v1/chat/completions", body, cts.Token))
        {
            Assert.Equal(HttpStatusCode.OK, slow.StatusCode);
            var stream = await slow.Content.ReadAsStreamAsync(cts.Token);
            Assert.True(await stream.ReadAsync(new byte[16], cts.Token) > 0);

            using var second = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 1000));
            var problem = await Api.AssertProblemAsync(second, HttpStatusCode.ServiceUnavailable);
            Assert.Equal("kv_memory_full", problem.GetProperty("error").GetProperty("code").GetString());
            Assert.NotNull(second.Headers.RetryAfter?.Delta);
            await cts.CancelAsync();
        }

        // The cancelled stream's memory comes back: a request fits again.
        HttpResponseMessage? next = null;
        for (var i = 0; i < 50 && next?.StatusCode != HttpStatusCode.OK; i++)
        {
            next?.Dispose();
            await Task.Delay(100);
            next = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
        }

        Assert.Equal(HttpStatusCode.OK, next!.StatusCode);
        next.Dispose();
    }

    [SkippableFact]
    public async Task A_request_larger_than_the_whole_kv_budget_is_400_and_names_max_tokens()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2000));
        var problem = await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("max_tokens", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
