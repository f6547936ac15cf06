namespace KvFusion.Cache.Fusion;

/// <summary>
/// Runs at most one computation per key at a time: concurrent callers with the same key share it and see its outcome
/// (its exception too). A caller that cancels stops waiting; the computation is cancelled only when every caller has.
/// </summary>
/// <typeparam name="TKey">The key type.</typeparam>
internal sealed class SingleFlight<TKey>
    where TKey : notnull
{
    private readonly Dictionary<TKey, Flight> _flights = [];
    private readonly Lock _lock = new();

    /// <summary>Number of computations running (for tests).</summary>
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

    /// <summary>Joins the computation running for <paramref name="key"/>, or starts <paramref name="work"/> for it.</summary>
    public Task RunAsync(TKey key, Func<CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        Flight? flight;
        bool start;
        lock (_lock)
        {
            start = !_flights.TryGetValue(key, out flight);
            if (flight is null)
            {
                flight = new Flight();
                _flights.Add(key, flight);
            }

            flight.Waiters++;
        }

        if (start)
        {
            _ = FlyAsync(key, flight, work);
        }

        return WaitAsync(key, flight, cancellationToken);
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

        // Forget the flight before completing it: a caller that sees it done and asks again starts afresh.
        Forget(key, flight);
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

    private async Task WaitAsync(TKey key, Flight flight, CancellationToken cancellationToken)
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
                    Remove(key, flight);
                }
            }

            if (abandon)
            {
                await flight.Cancellation.CancelAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    private void Forget(TKey key, Flight flight)
    {
        lock (_lock)
        {
            Remove(key, flight);
        }
    }

    private void Remove(TKey key, Flight flight)
    {
        if (_flights.TryGetValue(key, out var current) && ReferenceEquals(current, flight))
        {
            _flights.Remove(key);
        }
    }

    private sealed class Flight
    {
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // Not disposed: without a timer or linked token it holds nothing but memory, and disposing it would race with
        // the last waiter cancelling it.
        public CancellationTokenSource Cancellation { get; } = new();

        public int Waiters { get; set; }
    }
}
