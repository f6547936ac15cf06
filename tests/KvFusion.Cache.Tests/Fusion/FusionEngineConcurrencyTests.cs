using KvFusion.Cache.Fusion;
using KvFusion.Cache.Tests.Support;
using KvFusion.Engine.Generation;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>The compute gate under concurrent requests, puts, decoding and disposal.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class FusionEngineConcurrencyTests(TinyModelFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    // Long enough for a step that is not gated to finish on a busy machine; a gated one never does.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(500);

    private static FusionRequest Request(string chunk) => new()
    {
        Chunks = [ChunkInput.FromText(chunk)],
        Query = "What does it do?",
        Mode = FusionMode.Reuse,
        ReserveTokens = 8,
    };

    [SkippableFact]
    public async Task Dispose_waits_for_the_request_in_flight_and_later_calls_are_refused()
    {
        var store = new ControlledKvStore();
        var engine = new FusionEngine(fixture.Model, store);
        store.HoldPuts();

        // Reuse precomputes the text chunk inside the compute gate; its held put keeps it there.
        var inFlight = engine.FuseAsync(Request("The os module provides a portable way of using operating system dependent functionality."));
        await store.PutEntered.WaitAsync(Timeout);
        var queued = engine.FuseAsync(Request("The json module converts Python objects to JSON text."));
        var disposing = Task.Run(engine.Dispose);
        await Task.Delay(Settle);
        Assert.False(disposing.IsCompleted, "Dispose returned while a request held the compute gate");

        store.ReleasePuts();
        using (var context = await inFlight.WaitAsync(Timeout))
        {
            Assert.True(context.Report.TotalTokens > 0);
        }

        await disposing.WaitAsync(Timeout);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued.WaitAsync(Timeout));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.FuseAsync(Request("Any chunk.")));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.PutChunkAsync(ChunkInput.FromText("Any chunk.")));
        engine.Dispose();
    }

    [SkippableFact]
    public async Task Concurrent_puts_of_one_chunk_compute_it_once_and_return_one_id()
    {
        var store = new ControlledKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        var chunk = ChunkInput.FromText("A list comprehension consists of brackets containing an expression followed by a for clause.");

        // The first put holds the compute gate inside its precompute, its chunk not stored yet: every later put sees
        // it missing and must join that precompute rather than start (and queue) one of its own.
        store.HoldPuts();
        var first = engine.PutChunkAsync(chunk);
        await store.PutEntered.WaitAsync(Timeout);
        var later = Enumerable.Range(0, 5).Select(_ => Task.Run(() => engine.PutChunkAsync(chunk))).ToArray();
        try
        {
            await Eventually(() => engine.PrecomputeCallers == 6);
            Assert.Equal(1, engine.PrecomputesStarted);
        }
        finally
        {
            // Also on failure, or disposing the engine would wait for the held put forever.
            store.ReleasePuts();
        }

        var ids = await Task.WhenAll([first, .. later]).WaitAsync(Timeout);
        Assert.Single(ids.Distinct());
        Assert.Equal(1, store.ChunkPuts);
        Assert.Equal(1, engine.PrecomputesStarted);
    }

    /// <summary>Waits until <paramref name="condition"/> holds; only a failing test waits for the timeout.</summary>
    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold in time");
            await Task.Delay(1);
        }
    }

    [SkippableFact]
    public async Task A_decode_step_waits_while_another_request_holds_the_compute_gate()
    {
        var store = new ControlledKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        using var context = await engine.FuseAsync(Request("The with statement wraps the execution of a block."));
        await using var tokens = context.GenerateAsync(new SamplingOptions { MaxTokens = 4, StopTokens = [] }).GetAsyncEnumerator();

        // The first token is sampled from the prompt's logits; the second needs a decode step.
        Assert.True(await tokens.MoveNextAsync());
        store.HoldPuts();
        var other = engine.FuseAsync(Request("The json module converts Python objects to JSON text."));
        await store.PutEntered.WaitAsync(Timeout);
        var step = tokens.MoveNextAsync().AsTask();
        await Task.Delay(Settle);
        Assert.False(step.IsCompleted, "a decode step ran while another request held the compute gate");

        store.ReleasePuts();
        Assert.True(await step.WaitAsync(Timeout));
        (await other.WaitAsync(Timeout)).Dispose();
    }

    [SkippableFact]
    public async Task After_DisposeAsync_a_context_cannot_decode_and_the_engine_refuses_work()
    {
        var engine = new FusionEngine(fixture.Model, new ControlledKvStore());
        using var context = await engine.FuseAsync(Request("The with statement wraps the execution of a block."));
        await engine.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in context.GenerateAsync(new SamplingOptions { MaxTokens = 4, StopTokens = [] }))
            {
            }
        });
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.FuseAsync(Request("Any chunk.")));
        await engine.DisposeAsync();
    }
}
