using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Storage;

/// <summary>
/// The serialized side of the store contract: opaque blobs (KV containers) by key. <see cref="ContainerKvStore"/>
/// turns any implementation into an <see cref="IKvStore"/>; the later tiers (RocksDB, Redis, HTTP) implement this
/// interface and never see decoded KV.
/// </summary>
/// <remarks>
/// A blob handed out by <see cref="GetAsync"/> is owned by the caller and never changed afterwards by the store, so
/// the caller may decode straight from it without a copy. Implementations are safe for concurrent use.
/// </remarks>
public interface IKvBlobStore
{
    /// <summary>Gets a blob, or null when absent.</summary>
    /// <exception cref="KvBlobException">The stored blob cannot be handed out (e.g. larger than this store allows).</exception>
    ValueTask<ReadOnlyMemory<byte>?> GetAsync(CacheKey key, CancellationToken cancellationToken = default);

    /// <summary>Stores a blob (replacing an older one with the same key). The store copies or writes the bytes; the caller keeps its buffer.</summary>
    ValueTask PutAsync(CacheKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default);

    /// <summary>Removes a blob; false when it was absent.</summary>
    ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default);

    /// <summary>Whether a blob exists.</summary>
    ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default);
}
