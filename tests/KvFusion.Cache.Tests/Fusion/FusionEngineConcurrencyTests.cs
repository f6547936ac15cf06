using KvFusion.Cache.Fusion;
using KvFusion.Cache.Tests.Support;
using KvFusion.Engine.Generation;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>The compute gate under concurrent requests, puts, decoding and disposal.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class FusionEngineConcurrencyTests(TinyModelFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    // Only to show that Dispose did NOT return while a request held the gate (nothing signals a non-event): a correct
    // engine passes whatever the machine's load; a broken one is caught when it returns within this time.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(500);

    // The compute gate's step-by-step decoding (batching off): what these tests pin down.
    private static readonly FusionEngineOptions InTurn = new() { Batching = null };

    private static TaskCompletionSource Signal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

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

        // Dispose has closed the gate once the queued request fails; from then on it may only wait for the holder.
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued.WaitAsync(Timeout));
        var putsWhenDisposed = disposing.ContinueWith(_ => store.ChunkPuts, TaskScheduler.Default);
        try
        {
            // Bounded wait, only to show that something did NOT happen (see Settle).
            await Task.WhenAny(disposing, Task.Delay(Settle));
            Assert.False(disposing.IsCompleted, "Dispose returned while a request held the compute gate");
        }
        finally
        {
            store.ReleasePuts();
        }

        using (var context = await inFlight.WaitAsync(Timeout))
        {
            Assert.True(context.Report.TotalTokens > 0);
        }

        await disposing.WaitAsync(Timeout);

        // Ordered by the gate, not by time: the holder's put was done before Dispose returned.
        Assert.Equal(1, await putsWhenDisposed.WaitAsync(Timeout));
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
        using var engine = new FusionEngine(fixture.Model, store, InTurn);
        using var context = await engine.FuseAsync(Request("The with statement wraps the execution of a block."));
        await using var tokens = context.GenerateAsync(new SamplingOptions { MaxTokens = 4, StopTokens = [] }).GetAsyncEnumerator();

        // The first token is sampled from the prompt's logits; the second needs a decode step.
        Assert.True(await tokens.MoveNextAsync());
        store.HoldPuts();
        var other = engine.FuseAsync(Request("The json module converts Python objects to JSON text."));
        await store.PutEntered.WaitAsync(Timeout);
        var entered = context.StepsEntered;
        Task<bool> step;
        try
        {
            // No wait needed: up to the gate a step runs on this thread, so an ungated step would have counted itself
            // before MoveNextAsync returned; a gated one waits for the holder, which is stuck on its held put.
            step = tokens.MoveNextAsync().AsTask();
            Assert.Equal(entered, context.StepsEntered);
            Assert.False(step.IsCompleted, "a decode step ran while another request held the compute gate");
        }
        finally
        {
            store.ReleasePuts();
        }

        Assert.True(await step.WaitAsync(Timeout));
        Assert.Equal(entered + 1, context.StepsEntered);
        (await other.WaitAsync(Timeout)).Dispose();
    }

    [SkippableFact]
    public async Task Disposing_a_context_while_its_step_decodes_releases_the_session_after_the_step()
    {
        using var engine = new FusionEngine(fixture.Model, new ControlledKvStore(), InTurn);
        var context = await engine.FuseAsync(Request("The with statement wraps the execution of a block."));
        await using var tokens = context.GenerateAsync(new SamplingOptions { MaxTokens = 4, StopTokens = [] }).GetAsyncEnumerator();
        Assert.True(await tokens.MoveNextAsync());

        // Hold the next step inside the compute queue, just before it decodes, and dispose the context meanwhile.
        var stepEntered = Signal();
        var release = Signal();
        context.StepHook = () =>
        {
            stepEntered.TrySetResult();
            return release.Task;
        };
        var step = tokens.MoveNextAsync().AsTask();
        await stepEntered.Task.WaitAsync(Timeout);
        context.Dispose();
        release.SetResult();

        Assert.True(await step.WaitAsync(Timeout), "the step in flight did not decode on a live session");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => tokens.MoveNextAsync().AsTask());
        context.Dispose();
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
