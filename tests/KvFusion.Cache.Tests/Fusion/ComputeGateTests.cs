using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>Closing the gate waits for its holder, fails its waiters, and refuses new callers.</summary>
public sealed class ComputeGateTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Closing_waits_for_the_holder_fails_waiters_and_refuses_new_callers()
    {
        var gate = new ComputeGate();
        await gate.EnterAsync(CancellationToken.None);
        var waiter = gate.EnterAsync(CancellationToken.None);
        var closing = gate.DisposeAsync().AsTask();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter.WaitAsync(Timeout));
        var exited = 0;
        var exitedWhenClosed = closing.ContinueWith(_ => Volatile.Read(ref exited), TaskScheduler.Default);

        // Bounded wait, only to show that closing did NOT finish under the holder: it cannot fail a correct gate, and
        // catches a broken one that finishes within this time.
        await Task.WhenAny(closing, Task.Delay(200));
        Assert.False(closing.IsCompleted, "the gate closed under its holder");

        Volatile.Write(ref exited, 1);
        gate.Exit();
        await closing.WaitAsync(Timeout);

        // Ordered by the gate, not by time: closing finished after the holder left.
        Assert.Equal(1, await exitedWhenClosed.WaitAsync(Timeout));
        Assert.True(gate.IsClosed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => gate.EnterAsync(CancellationToken.None));
        gate.Dispose();
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_and_the_gate_still_closes()
    {
        var gate = new ComputeGate();
        await gate.EnterAsync(CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var waiter = gate.EnterAsync(cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter.WaitAsync(Timeout));

        gate.Exit();
        await gate.DisposeAsync().AsTask().WaitAsync(Timeout);
    }

    [Fact]
    public async Task Holders_take_turns()
    {
        await using var gate = new ComputeGate();
        var inside = 0;
        var most = 0;
        async Task Step()
        {
            await gate.EnterAsync(CancellationToken.None);
            try
            {
                most = Math.Max(most, Interlocked.Increment(ref inside));
                await Task.Delay(5);
                Interlocked.Decrement(ref inside);
            }
            finally
            {
                gate.Exit();
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Task.Run(Step))).WaitAsync(Timeout);
        Assert.Equal(1, most);
    }
}
