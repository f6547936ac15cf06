using KvFusion.Cache.Fusion;
using KvFusion.Cache.Scheduling;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;

namespace KvFusion.Cache.Tests.Scheduling;

/// <summary>
/// The engine's KV memory bound: fusions that do not fit wait for memory and go ahead as it is given back, are refused
/// after the configured wait or at once when larger than the whole budget, and nothing stays reserved afterwards.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed class KvMemoryBudgetTests(TinyModelFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static FusionRequest Request(int reserve = 8) => new()
    {
        Chunks = [ChunkInput.FromText("The json module converts Python objects to JSON text and back.")],
        Query = "What does it do?",
        Mode = FusionMode.Reuse,
        ReserveTokens = reserve,
    };

    // Every request here fits one 256-slot session, so a budget of one session's bytes admits one at a time.
    private long OneSession => fixture.Model.SessionKvBytesFor(1);

    [SkippableFact]
    public async Task A_fusion_waits_while_memory_is_full_and_goes_ahead_when_a_context_frees_it()
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { MaxSessionKvBytes = OneSession });
        var first = await engine.FuseAsync(Request());
        Assert.Equal(OneSession, engine.ReservedKvBytes);

        var second = engine.FuseAsync(Request());
        await Task.Delay(200);
        Assert.False(second.IsCompleted, "a fusion got KV memory the budget did not have");

        first.Dispose();
        using (await second.WaitAsync(Timeout))
        {
            Assert.Equal(OneSession, engine.ReservedKvBytes);
        }

        Assert.Equal(0, engine.ReservedKvBytes);
    }

    [SkippableFact]
    public async Task A_fusion_that_waits_too_long_is_refused_and_reserves_nothing()
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { MaxSessionKvBytes = OneSession, KvMemoryWait = TimeSpan.FromMilliseconds(100) });
        using (await engine.FuseAsync(Request()))
        {
            var refused = await Assert.ThrowsAsync<KvMemoryFullException>(() => engine.FuseAsync(Request()));
            Assert.True(refused.RetryAfter >= TimeSpan.FromSeconds(1));
            Assert.Equal(OneSession, engine.ReservedKvBytes);
        }

        Assert.Equal(0, engine.ReservedKvBytes);
    }

    [SkippableFact]
    public async Task A_fusion_larger_than_the_whole_budget_is_refused_at_once()
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { MaxSessionKvBytes = OneSession });
        var e = await Assert.ThrowsAsync<FusionException>(() => engine.FuseAsync(Request(reserve: 600)));
        Assert.Equal(FusionError.KvMemoryExceeded, e.Error);
        Assert.Contains("max_tokens", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.ReservedKvBytes);
        using (await engine.FuseAsync(Request()))
        {
        }
    }

    [SkippableFact]
    public async Task A_cancelled_waiter_leaves_the_line_and_the_next_gets_the_memory()
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { MaxSessionKvBytes = OneSession });
        var first = await engine.FuseAsync(Request());
        using var cancel = new CancellationTokenSource();
        var cancelled = engine.FuseAsync(Request(), cancel.Token);
        var third = engine.FuseAsync(Request());
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Timeout));
        first.Dispose();
        (await third.WaitAsync(Timeout)).Dispose();
        Assert.Equal(0, engine.ReservedKvBytes);
    }
}
