using System.Diagnostics;
using System.Net;
using KvFusion.Server.Inference;
using Microsoft.Extensions.DependencyInjection;

namespace KvFusion.Server.Tests.Concurrency;

/// <summary>One place on the engine and no queue: a second request while one runs is refused at once.</summary>
public sealed class SchedulerTests(SchedulerTests.Server server) : IClassFixture<SchedulerTests.Server>
{
    // Greedy on this prompt the tiny model writes code for hundreds of tokens without an end of sequence.
    private const string Prompt = "Write a long Python module with many functions.";

    public sealed class Server() : ServerFixture(new Dictionary<string, string?>
    {
        ["KvFusion:Queue:MaxActive"] = "1",
        ["KvFusion:Queue:Capacity"] = "0",
        ["KvFusion:Queue:RetryAfterSeconds"] = "2",
    });

    [SkippableFact]
    public async Task A_request_while_the_only_place_is_held_by_a_stream_is_503_with_retry_after()
    {
        using var client = server.Client();
        var scheduler = server.Factory.Services.GetRequiredService<IRequestScheduler>();
        await WaitIdleAsync(scheduler);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var slow = await StartSlowStreamAsync(client, cts.Token))
        {
            // The stream is not read on, so the server soon blocks writing it and keeps its place.
            Assert.Equal(1, scheduler.Active);
            using var second = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
            await Api.AssertProblemAsync(second, HttpStatusCode.ServiceUnavailable);
            Assert.Equal(TimeSpan.FromSeconds(2), second.Headers.RetryAfter?.Delta);
            await cts.CancelAsync();
        }

        await WaitIdleAsync(scheduler);
    }

    [SkippableFact]
    public async Task A_cancelled_stream_gives_its_place_back()
    {
        using var client = server.Client();
        var scheduler = server.Factory.Services.GetRequiredService<IRequestScheduler>();
        await WaitIdleAsync(scheduler);
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            using var slow = await StartSlowStreamAsync(client, cts.Token);
            Assert.Equal(1, scheduler.Active);
            await cts.CancelAsync();
        }

        await WaitIdleAsync(scheduler);
        using var next = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    /// <summary>Starts a long greedy stream and waits for its first bytes, so it holds the place.</summary>
    private static async Task<HttpResponseMessage> StartSlowStreamAsync(HttpClient client, CancellationToken ct)
    {
        var body = Api.Chat(Prompt, maxTokens: 1500);
        body["stream"] = true;
        var response = await client.SendStreamingAsync("/v1/chat/completions", body, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Read the first bytes only: disposing the body stream would abort the request.
        var stream = await response.Content.ReadAsStreamAsync(ct);
        Assert.True(await stream.ReadAsync(new byte[16], ct) > 0);
        return response;
    }

    private static async Task WaitIdleAsync(IRequestScheduler scheduler)
    {
        var watch = Stopwatch.StartNew();
        while (scheduler.Active > 0 && watch.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(50);
        }

        Assert.Equal(0, scheduler.Active);
    }
}

/// <summary>One place and one seat in the queue: a waiting request runs when the place frees, or leaves when cancelled.</summary>
public sealed class QueueTests(QueueTests.Server server) : IClassFixture<QueueTests.Server>
{
    public sealed class Server() : ServerFixture(new Dictionary<string, string?>
    {
        ["KvFusion:Queue:MaxActive"] = "1",
        ["KvFusion:Queue:Capacity"] = "1",
    });

    [SkippableFact]
    public async Task A_queued_request_runs_when_the_place_frees_and_reports_its_wait()
    {
        using var client = server.Client();
        var scheduler = server.Factory.Services.GetRequiredService<IRequestScheduler>();
        Task<HttpResponseMessage> queued;
        // Hold the one place directly, so the request must wait in the queue.
        using (await scheduler.EnterAsync(CancellationToken.None))
        {
            queued = client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
            await PollAsync(() => scheduler.Waiting == 1);
            await Task.Delay(50);
        }

        using var response = await queued;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await response.ReadJsonAsync()).GetProperty("kvfusion").GetProperty("queue_ms").GetDouble() > 0);
    }

    [SkippableFact]
    public async Task A_queued_request_whose_client_leaves_gives_its_seat_back()
    {
        using var client = server.Client();
        var scheduler = server.Factory.Services.GetRequiredService<IRequestScheduler>();
        Task<HttpResponseMessage> next;
        using (await scheduler.EnterAsync(CancellationToken.None))
        {
            using var cts = new CancellationTokenSource();
            var queued = client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json(Api.Serialize(Api.Chat("Hi?", maxTokens: 2))), cts.Token);
            await PollAsync(() => scheduler.Waiting == 1);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
            await PollAsync(() => scheduler.Waiting == 0);

            // The seat is free again: the next request waits in it, and only the one after that is refused.
            next = client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
            await PollAsync(() => scheduler.Waiting == 1);
            using var refused = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2));
            await Api.AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
        }

        using var served = await next;
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    private static async Task PollAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition() && watch.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(20);
        }

        Assert.True(condition(), "condition not met within 15 s");
    }
}
