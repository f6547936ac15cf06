namespace KvFusion.Server.Inference;

/// <summary>
/// Admission in front of the engine: a request holds a <see cref="RequestSlot"/> while it fuses and generates.
/// The batching scheduler of a later issue replaces this behind the same interface.
/// </summary>
public interface IRequestScheduler
{
    /// <summary>Requests holding a place now.</summary>
    int Active { get; }

    /// <summary>Requests waiting for a place now.</summary>
    int Waiting { get; }

    /// <summary>Waits for a place; leaves the queue when <paramref name="cancellationToken"/> fires (client gone).</summary>
    /// <exception cref="RequestQueueFullException">The queue is full: answer 503 with Retry-After.</exception>
    ValueTask<RequestSlot> EnterAsync(CancellationToken cancellationToken);
}

/// <summary>A place in the <see cref="IRequestScheduler"/>; disposing it gives the place to the next waiter.</summary>
public sealed class RequestSlot : IDisposable
{
    private Action? _release;

    /// <summary>Creates a lease that runs <paramref name="release"/> once when disposed.</summary>
    public RequestSlot(Action release, TimeSpan waited)
    {
        _release = release;
        Waited = waited;
    }

    /// <summary>How long the request waited for its place.</summary>
    public TimeSpan Waited { get; }

    /// <inheritdoc />
    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}

/// <summary>The queue is full; the client should retry after <see cref="RetryAfter"/>.</summary>
public sealed class RequestQueueFullException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RequestQueueFullException(TimeSpan retryAfter)
        : base("The service is at capacity: every place in its queue is taken. Retry later.") => RetryAfter = retryAfter;

    /// <summary>Creates the exception.</summary>
    public RequestQueueFullException() : this(TimeSpan.FromSeconds(1)) { }

    /// <summary>Creates the exception.</summary>
    public RequestQueueFullException(string message) : base(message) => RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>Creates the exception.</summary>
    public RequestQueueFullException(string message, Exception innerException) : base(message, innerException) => RetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>How long the client should wait.</summary>
    public TimeSpan RetryAfter { get; }
}
