using System.Collections.Concurrent;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Storage;

/// <summary>A process-local blob store: a concurrent dictionary of byte arrays, each copied in on put and never changed.</summary>
public sealed class InMemoryBlobStore : IKvBlobStore
{
    private readonly ConcurrentDictionary<CacheKey, byte[]> _blobs = new();

    /// <summary>Number of blobs.</summary>
    public int Count => _blobs.Count;

    /// <summary>Bytes held.</summary>
    public long ByteSize => _blobs.Values.Sum(b => (long)b.Length);

    /// <summary>The keys held.</summary>
    public IReadOnlyCollection<CacheKey> Keys => [.. _blobs.Keys];

    /// <inheritdoc />
    public ValueTask<ReadOnlyMemory<byte>?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        // Spelled out: a null array converts to an empty ReadOnlyMemory, which would turn a miss into an empty blob.
        ValueTask.FromResult(_blobs.TryGetValue(key, out var blob) ? new ReadOnlyMemory<byte>(blob) : (ReadOnlyMemory<byte>?)null);

    /// <inheritdoc />
    public ValueTask PutAsync(CacheKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        // A copy: the caller may reuse its buffer, and readers get arrays nobody writes to.
        _blobs[key] = blob.ToArray();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_blobs.TryRemove(key, out _));

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_blobs.ContainsKey(key));
}
