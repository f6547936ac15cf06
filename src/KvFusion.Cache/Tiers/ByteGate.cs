namespace KvFusion.Cache.Tiers;

/// <summary>
/// A first-come, first-served budget of bytes that waiters acquire and release (a weighted semaphore). A request
/// larger than the whole budget is admitted alone, when nothing is held, so it can never wait forever.
/// </summary>
internal sealed class ByteGate(long capacity)
{
    private readonly Lock _lock = new();
    private readonly Queue<Waiter> _waiters = new();
    private long _used;

    public long Used
    {
        get
        {
            lock (_lock)
            {
                return _used;
            }
        }
    }

    public ValueTask WaitAsync(long bytes, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Waiter waiter;
        lock (_lock)
        {
            Pump();
            if (_waiters.Count == 0 && Fits(bytes))
            {
                _used += bytes;
                return ValueTask.CompletedTask;
            }

            waiter = new Waiter(bytes);
            _waiters.Enqueue(waiter);
        }

        return new ValueTask(WaitSlowAsync(waiter, cancellationToken));
    }

    /// <summary>Acquires <paramref name="bytes"/> only if that needs no wait.</summary>
    public bool TryAcquire(long bytes)
    {
        lock (_lock)
        {
            Pump();
            if (_waiters.Count == 0 && Fits(bytes))
            {
                _used += bytes;
                return true;
            }

            return false;
        }
    }

    public void Release(long bytes)
    {
        lock (_lock)
        {
            _used -= bytes;
            Pump();
        }
    }

    private void Cancel(Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Completion.TrySetCanceled())
            {
                // A cancelled head may have been what the others waited behind.
                Pump();
            }
        }
    }

    /// <summary>Admits waiters from the head while they fit; called under the lock.</summary>
    private void Pump()
    {
        while (_waiters.TryPeek(out var next))
        {
            if (next.Completion.Task.IsCompleted)
            {
                _waiters.Dequeue();
                continue;
            }

            if (!Fits(next.Bytes))
            {
                break;
            }

            _waiters.Dequeue();
            _used += next.Bytes;
            next.Completion.SetResult();
        }
    }

    private bool Fits(long bytes) => _used == 0 || _used + bytes <= capacity;

    private async Task WaitSlowAsync(Waiter waiter, CancellationToken cancellationToken)
    {
        await using (cancellationToken.Register(static s => { var (gate, w) = ((ByteGate, Waiter))s!; gate.Cancel(w); }, (this, waiter)).ConfigureAwait(false))
        {
            await waiter.Completion.Task.ConfigureAwait(false);
        }
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;

        // Asynchronous continuations: waiters are completed under the lock.
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
