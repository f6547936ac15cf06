using System.Collections.Concurrent;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Storage;

/// <summary>A process-local store: a concurrent dictionary of immutable entries.</summary>
public sealed class InMemoryKvStore : IKvStore
{
    private readonly ConcurrentDictionary<CacheKey, CachedKv> _entries = new();

    /// <summary>Number of entries.</summary>
    public int Count => _entries.Count;

    /// <summary>Bytes of K and V held.</summary>
    public long ByteSize => _entries.Values.Sum(e => e.ByteSize);

    /// <summary>The keys held.</summary>
    public IReadOnlyCollection<CacheKey> Keys => [.. _entries.Keys];

    /// <inheritdoc />
    public ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_entries.TryGetValue(key, out var e) ? e : null);

    /// <inheritdoc />
    public ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _entries[entry.Key] = entry;
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_entries.TryRemove(key, out _));

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_entries.ContainsKey(key));
}
