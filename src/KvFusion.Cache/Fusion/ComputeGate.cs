namespace KvFusion.Cache.Fusion;

/// <summary>
/// The queue in front of the backend: one holder at a time, the others wait. Closing it refuses new entries, wakes
/// the waiters with <see cref="ObjectDisposedException"/> and waits for the holder to leave, so the semaphore is never
/// disposed under a holder.
/// </summary>
internal sealed class ComputeGate : IAsyncDisposable, IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Callers inside (waiting or holding), plus one for the gate itself that closing drops; once zero, it stays zero.
    private int _users = 1;
    private int _closed;

    /// <summary>Whether the gate was closed.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Waits for the gate; every successful call must be paired with <see cref="Exit"/>.</summary>
    /// <exception cref="ObjectDisposedException">The gate is closed or closes while waiting.</exception>
    public async Task EnterAsync(CancellationToken cancellationToken)
    {
        if (!TryAddUser())
        {
            throw Closed();
        }

        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
                await _semaphore.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            else
            {
                await _semaphore.WaitAsync(_closing.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            RemoveUser();
            throw Closed();
        }
        catch
        {
            RemoveUser();
            throw;
        }
    }

    /// <summary>Leaves the gate entered by <see cref="EnterAsync"/>.</summary>
    public void Exit()
    {
        _semaphore.Release();
        RemoveUser();
    }

    /// <summary>Closes the gate and waits until the holder and every waiter have left.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            await _closing.CancelAsync().ConfigureAwait(false);
            RemoveUser();
            await _drained.Task.ConfigureAwait(false);
            _semaphore.Dispose();
            _closing.Dispose();
        }
        else
        {
            await _drained.Task.ConfigureAwait(false);
        }
    }

    /// <summary>Closes the gate, blocking until the holder has left (a step of compute, not a whole generation).</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private bool TryAddUser()
    {
        while (true)
        {
            var users = Volatile.Read(ref _users);
            if (users == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
            {
                break;
            }
        }

        if (IsClosed)
        {
            RemoveUser();
            return false;
        }

        return true;
    }

    private void RemoveUser()
    {
        if (Interlocked.Decrement(ref _users) == 0)
        {
            _drained.TrySetResult();
        }
    }

    private static ObjectDisposedException Closed() => new(nameof(FusionEngine), "The fusion engine was disposed.");
}
