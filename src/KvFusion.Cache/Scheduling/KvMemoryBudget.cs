using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Scheduling;

/// <summary>
/// The bytes of working KV cache that an engine's sessions may hold together
/// (<see cref="FusionEngineOptions.MaxSessionKvBytes"/>). A fusion reserves its session's cache before it computes
/// and gives it back when its context is disposed. A request that does not fit waits, first come first served, and is
/// refused with <see cref="KvMemoryFullException"/> when it has waited too long. A request larger than the whole
/// budget is refused at once. So memory is bounded by admission, never by an allocation failing halfway.
/// </summary>
internal sealed class KvMemoryBudget(long capacity)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _reserved;

    /// <summary>Bytes the sessions may hold together.</summary>
    public long Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "The KV budget must be positive.");

    /// <summary>Bytes reserved now.</summary>
    public long Reserved
    {
        get
        {
            lock (_lock)
            {
                return _reserved;
            }
        }
    }

    /// <summary>Requests waiting for memory now.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
            {
                return _waiters.Count;
            }
        }
    }

    /// <summary>Reserves <paramref name="bytes"/>, waiting up to <paramref name="maxWait"/> for them.</summary>
    /// <exception cref="FusionException">More than the whole budget (<see cref="FusionError.KvMemoryExceeded"/>).</exception>
    /// <exception cref="KvMemoryFullException">The memory did not free up in time.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired while waiting.</exception>
    public async Task<KvMemoryReservation> ReserveAsync(long bytes, TimeSpan maxWait, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes > Capacity)
        {
            throw new FusionException(FusionError.KvMemoryExceeded,
                $"The prompt and max_tokens need {bytes} bytes of KV cache; the engine holds at most {Capacity} for all requests together. Shorten the prompt or max_tokens.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        Waiter waiter;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _reserved + bytes <= Capacity)
            {
                _reserved += bytes;
                return new KvMemoryReservation(this, bytes);
            }

            waiter = new Waiter(bytes);
            waiter.Node = _waiters.AddLast(waiter);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(maxWait);
        await using (deadline.Token.Register(() => Abandon(waiter)).ConfigureAwait(false))
        {
            try
            {
                await waiter.Granted.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new KvMemoryFullException(bytes, Capacity, maxWait);
            }
        }

        return new KvMemoryReservation(this, bytes);
    }

    internal void Release(long bytes)
    {
        lock (_lock)
        {
            _reserved -= bytes;
            GrantWaiters();
        }
    }

    private void Abandon(Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Node?.List is null)
            {
                return;
            }

            _waiters.Remove(waiter.Node);
            waiter.Granted.TrySetCanceled();

            // The head leaving can let the ones behind it in.
            GrantWaiters();
        }
    }

    private void GrantWaiters()
    {
        while (_waiters.First is { } first && _reserved + first.Value.Bytes <= Capacity)
        {
            _waiters.RemoveFirst();
            _reserved += first.Value.Bytes;
            first.Value.Granted.TrySetResult();
        }
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;

        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LinkedListNode<Waiter>? Node { get; set; }
    }
}

/// <summary>Bytes held in a <see cref="KvMemoryBudget"/>; disposing gives them back once.</summary>
internal sealed class KvMemoryReservation(KvMemoryBudget budget, long bytes) : IDisposable
{
    private int _released;

    /// <summary>Bytes held.</summary>
    public long Bytes { get; } = bytes;

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            budget.Release(Bytes);
        }
    }
}

/// <summary>The engine's KV memory stayed full for longer than a request may wait: retry after <see cref="RetryAfter"/>.</summary>
public sealed class KvMemoryFullException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KvMemoryFullException(long bytes, long capacity, TimeSpan waited)
        : base($"The engine's KV memory is full: {bytes} bytes were not free within {waited.TotalSeconds:0.#} s (budget {capacity} bytes). Retry later.")
        => RetryAfter = TimeSpan.FromSeconds(Math.Clamp(Math.Ceiling(waited.TotalSeconds / 4), 1, 30));

    /// <summary>Creates the exception.</summary>
    public KvMemoryFullException() : base("The engine's KV memory is full. Retry later.") => RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>Creates the exception.</summary>
    public KvMemoryFullException(string message) : base(message) => RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>Creates the exception.</summary>
    public KvMemoryFullException(string message, Exception innerException) : base(message, innerException) => RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>How long the client should wait before retrying.</summary>
    public TimeSpan RetryAfter { get; }
}
