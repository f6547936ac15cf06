namespace KvFusion.Cache.Fusion;

/// <summary>
/// Runs at most one computation per key at a time: concurrent callers with the same key share it and see its outcome
/// (its exception too). A caller that cancels stops waiting; the computation is cancelled only when every caller has.
/// </summary>
/// <remarks>
/// A flight stays registered until its work has returned, even after every caller has left and it was cancelled:
/// cancellation is cooperative, so abandoned work may still be computing or writing. A caller that finds an abandoned
/// flight waits for it to end and then starts afresh, so two computations of one key never overlap.
/// </remarks>
/// <typeparam name="TKey">The key type.</typeparam>
internal sealed class SingleFlight<TKey>
    where TKey : notnull
{
    private readonly Dictionary<TKey, Flight> _flights = [];
    private readonly Lock _lock = new();

    /// <summary>Number of computations whose work has not returned yet, abandoned ones included (for tests).</summary>
    public int Running
    {
        get
        {
            lock (_lock)
            {
                return _flights.Count;
            }
        }
    }

    /// <summary>
    /// Joins the computation running for <paramref name="key"/>, or starts <paramref name="work"/> for it. A token that
    /// is already cancelled starts and joins nothing.
    /// </summary>
    public async Task RunAsync(TKey key, Func<CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Flight? flight;
            var start = false;
            var abandoned = false;
            lock (_lock)
            {
                if (!_flights.TryGetValue(key, out flight))
                {
                    flight = new Flight();
                    _flights.Add(key, flight);
                    start = true;
                }

                abandoned = flight.Abandoned;
                if (!abandoned)
                {
                    flight.Waiters++;
                }
            }

            if (abandoned)
            {
                // Its work may still write; wait for it to return (whatever its outcome, or this caller's
                // cancellation, which the loop then throws) and ask again.
                await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            if (start)
            {
                _ = FlyAsync(key, flight, work);
            }

            await WaitAsync(flight, cancellationToken).ConfigureAwait(false);
            return;
        }
    }

    private async Task FlyAsync(TKey key, Flight flight, Func<CancellationToken, Task> work)
    {
        Exception? failure = null;
        try
        {
            // Off the first caller's stack, so that caller's cancellation is just one waiter leaving.
            await Task.Yield();
            await work(flight.Cancellation.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }

        // Forget the flight only now that its work has returned, and before completing it: a caller that sees it done
        // and asks again starts afresh.
        lock (_lock)
        {
            if (_flights.TryGetValue(key, out var current) && ReferenceEquals(current, flight))
            {
                _flights.Remove(key);
            }
        }

        if (failure is OperationCanceledException && flight.Cancellation.IsCancellationRequested)
        {
            flight.Completion.TrySetCanceled(flight.Cancellation.Token);
        }
        else if (failure is not null)
        {
            flight.Completion.TrySetException(failure);
        }
        else
        {
            flight.Completion.TrySetResult();
        }
    }

    private async Task WaitAsync(Flight flight, CancellationToken cancellationToken)
    {
        try
        {
            await flight.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            bool abandon;
            lock (_lock)
            {
                abandon = --flight.Waiters == 0 && !flight.Completion.Task.IsCompleted;
                if (abandon)
                {
                    // Stays registered until its work returns; later callers wait for that instead of joining.
                    flight.Abandoned = true;
                }
            }

            if (abandon)
            {
                await flight.Cancellation.CancelAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    private sealed class Flight
    {
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // Not disposed: without a timer or linked token it holds nothing but memory, and disposing it would race with
        // the last waiter cancelling it.
        public CancellationTokenSource Cancellation { get; } = new();

        // Both guarded by the single flight's lock.
        public int Waiters { get; set; }

        public bool Abandoned { get; set; }
    }
}
