using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Storage;

/// <summary>
/// Where stored KV entries live. The in-memory store is the first implementation; the tiered stores (host memory,
/// RocksDB, Redis) implement the same contract.
/// </summary>
public interface IKvStore
{
    /// <summary>Gets an entry, or null when absent.</summary>
    ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default);

    /// <summary>Stores an entry (replacing an older one with the same key).</summary>
    ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default);

    /// <summary>Removes an entry; false when it was absent.</summary>
    ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default);

    /// <summary>Whether an entry exists.</summary>
    ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default);
}
