namespace KvFusion.Cache.Tests.Fusion;

/// <summary>
/// Collects what is posted to it and runs it only when asked, on the caller's thread: code that yields while this is
/// the current context (e.g. <c>await Task.Yield()</c>) goes no further until <see cref="RunPosted"/>, which makes
/// "did it start anything?" a deterministic question.
/// </summary>
internal sealed class QueuedSynchronizationContext : SynchronizationContext
{
    private readonly Queue<(SendOrPostCallback Callback, object? State)> _posted = new();
    private readonly Lock _lock = new();

    /// <summary>Calls <paramref name="action"/> with this as the current context, then restores the previous one.</summary>
    public T Within<T>(Func<T> action)
    {
        var previous = Current;
        SetSynchronizationContext(this);
        try
        {
            return action();
        }
        finally
        {
            SetSynchronizationContext(previous);
        }
    }

    /// <summary>Runs everything posted so far and whatever that posts in turn; returns how many callbacks ran.</summary>
    public int RunPosted()
    {
        var ran = 0;
        while (true)
        {
            (SendOrPostCallback Callback, object? State) next;
            lock (_lock)
            {
                if (!_posted.TryDequeue(out next))
                {
                    return ran;
                }
            }

            Within(() =>
            {
                next.Callback(next.State);
                return 0;
            });
            ran++;
        }
    }

    public override void Post(SendOrPostCallback d, object? state)
    {
        lock (_lock)
        {
            _posted.Enqueue((d, state));
        }
    }

    public override SynchronizationContext CreateCopy() => this;
}
