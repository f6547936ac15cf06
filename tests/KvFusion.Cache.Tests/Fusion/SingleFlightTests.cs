using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>Callers of one key share one computation, its outcome, and its cancellation only when all of them cancel.</summary>
public sealed class SingleFlightTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static TaskCompletionSource Signal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [Fact]
    public async Task Concurrent_callers_of_one_key_share_one_run_and_a_later_call_runs_again()
    {
        var flights = new SingleFlight<string>();
        var release = Signal();
        var runs = 0;
        async Task Work(CancellationToken ct)
        {
            Interlocked.Increment(ref runs);
            await release.Task.WaitAsync(ct);
        }

        var callers = Enumerable.Range(0, 8).Select(_ => flights.RunAsync("a", Work, CancellationToken.None)).ToArray();
        var other = flights.RunAsync("b", Work, CancellationToken.None);
        release.SetResult();
        await Task.WhenAll(callers).WaitAsync(Timeout);
        await other.WaitAsync(Timeout);
        Assert.Equal(2, runs);
        Assert.Equal(0, flights.Running);

        await flights.RunAsync("a", Work, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(3, runs);
    }

    [Fact]
    public async Task A_failure_reaches_every_caller()
    {
        var flights = new SingleFlight<string>();
        var release = Signal();
        async Task Work(CancellationToken ct)
        {
            await release.Task.WaitAsync(ct);
            throw new InvalidDataException("store is broken");
        }

        var callers = Enumerable.Range(0, 3).Select(_ => flights.RunAsync("a", Work, CancellationToken.None)).ToArray();
        release.SetResult();
        foreach (var caller in callers)
        {
            var e = await Assert.ThrowsAsync<InvalidDataException>(() => caller.WaitAsync(Timeout));
            Assert.Equal("store is broken", e.Message);
        }
    }

    [Fact]
    public async Task One_caller_cancelling_leaves_the_run_to_the_others()
    {
        var flights = new SingleFlight<string>();
        var started = Signal();
        var release = Signal();
        var workCancelled = false;
        async Task Work(CancellationToken ct)
        {
            started.SetResult();
            try
            {
                await release.Task.WaitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                workCancelled = true;
                throw;
            }
        }

        using var cts = new CancellationTokenSource();
        var leaving = flights.RunAsync("a", Work, cts.Token);
        var staying = flights.RunAsync("a", Work, CancellationToken.None);
        await started.Task.WaitAsync(Timeout);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving.WaitAsync(Timeout));
        Assert.False(staying.IsCompleted);

        release.SetResult();
        await staying.WaitAsync(Timeout);
        Assert.False(workCancelled);
    }

    [Fact]
    public async Task The_run_is_cancelled_when_every_caller_has_cancelled_and_a_new_caller_starts_afresh()
    {
        var flights = new SingleFlight<string>();
        var cancelled = Signal();
        var runs = 0;
        async Task Hang(CancellationToken ct)
        {
            Interlocked.Increment(ref runs);
            try
            {
                await Task.Delay(System.Threading.Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                cancelled.TrySetResult();
                throw;
            }
        }

        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var a = flights.RunAsync("a", Hang, first.Token);
        var b = flights.RunAsync("a", Hang, second.Token);
        await first.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.WaitAsync(Timeout));
        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b.WaitAsync(Timeout));
        await cancelled.Task.WaitAsync(Timeout);

        await flights.RunAsync("a", _ => Task.CompletedTask, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(1, runs);
    }

    [Fact]
    public async Task A_caller_whose_token_is_already_cancelled_starts_nothing()
    {
        var flights = new SingleFlight<string>();
        var runs = 0;
        Task Work(CancellationToken ct)
        {
            Interlocked.Increment(ref runs);
            return Task.CompletedTask;
        }

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        // Work started by the call would be posted to this context (the flight yields first); running what was posted
        // makes sure it got its chance.
        var context = new QueuedSynchronizationContext();
        var call = context.Within(() => flights.RunAsync("a", Work, cancelled.Token));
        context.RunPosted();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Timeout));
        Assert.Equal(0, runs);
        Assert.Equal(0, flights.Running);
    }

    [Fact]
    public async Task A_caller_after_every_caller_cancelled_waits_for_the_abandoned_work_to_return_before_starting_afresh()
    {
        var flights = new SingleFlight<string>();
        var started = Signal();
        var release = Signal();
        var firstRunning = 0;
        var overlapped = -1;
        var secondRuns = 0;

        // Ignores its token, as cooperative cancellation allows: it is still computing after it was cancelled.
        async Task Stubborn(CancellationToken ct)
        {
            Volatile.Write(ref firstRunning, 1);
            started.SetResult();
            await release.Task.ConfigureAwait(false);
            Volatile.Write(ref firstRunning, 0);
        }

        Task Second(CancellationToken ct)
        {
            Interlocked.Increment(ref secondRuns);
            Volatile.Write(ref overlapped, Volatile.Read(ref firstRunning));
            return Task.CompletedTask;
        }

        using var cts = new CancellationTokenSource();
        var leaving = flights.RunAsync("a", Stubborn, cts.Token);
        await started.Task.WaitAsync(Timeout);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving.WaitAsync(Timeout));

        // A second run started now would be posted to this context; running what was posted gives it its chance.
        var context = new QueuedSynchronizationContext();
        var next = context.Within(() => flights.RunAsync("a", Second, CancellationToken.None));
        context.RunPosted();
        Assert.Equal(0, Volatile.Read(ref secondRuns));
        Assert.False(next.IsCompleted);
        Assert.Equal(1, flights.Running);

        release.SetResult();
        await next.WaitAsync(Timeout);
        Assert.Equal(1, secondRuns);
        Assert.Equal(0, overlapped);
        Assert.Equal(0, flights.Running);
    }
}
