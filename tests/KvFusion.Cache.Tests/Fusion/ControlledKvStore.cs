using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>
/// An in-memory store that counts chunk puts, can slow down lookups (to widen check-then-compute races) and can hold
/// puts until released (to keep a request inside the engine's compute gate).
/// </summary>
internal sealed class ControlledKvStore : IKvStore
{
    private readonly InMemoryKvStore _inner = new();
    private int _chunkPuts;
    private TaskCompletionSource? _putGate;
    private TaskCompletionSource _putEntered = NewSignal();

    /// <summary>Chunk entries written so far.</summary>
    public int ChunkPuts => Volatile.Read(ref _chunkPuts);

    /// <summary>How long each lookup waits before answering.</summary>
    public TimeSpan LookupDelay { get; set; }

    /// <summary>Completes when a put arrives while puts are held.</summary>
    public Task PutEntered => _putEntered.Task;

    /// <summary>From now on, puts wait until <see cref="ReleasePuts"/>.</summary>
    public void HoldPuts()
    {
        _putEntered = NewSignal();
        _putGate = NewSignal();
    }

    /// <summary>Lets held puts (and later ones) through.</summary>
    public void ReleasePuts() => _putGate?.TrySetResult();

    public async ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        await DelayAsync(cancellationToken);
        return await _inner.GetAsync(key, cancellationToken);
    }

    public async ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default)
    {
        if (_putGate is { } gate)
        {
            _putEntered.TrySetResult();
            await gate.Task.WaitAsync(cancellationToken);
        }

        if (entry.Key.Kind == CacheEntryKind.Chunk)
        {
            Interlocked.Increment(ref _chunkPuts);
        }

        await _inner.PutAsync(entry, cancellationToken);
    }

    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => _inner.RemoveAsync(key, cancellationToken);

    public async ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        await DelayAsync(cancellationToken);
        return await _inner.ContainsAsync(key, cancellationToken);
    }

    private async ValueTask DelayAsync(CancellationToken cancellationToken)
    {
        if (LookupDelay > TimeSpan.Zero)
        {
            await Task.Delay(LookupDelay, cancellationToken);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
