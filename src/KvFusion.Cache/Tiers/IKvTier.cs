namespace KvFusion.Cache.Tiers;

/// <summary>
/// One storage tier (host memory, RocksDB, Redis): opaque blobs (KV containers) by <see cref="TierKey"/>. The
/// tier manager stacks tiers and turns them into the <see cref="Storage.IKvBlobStore"/> that
/// <see cref="Storage.ContainerKvStore"/> reads and writes; a tier never sees decoded KV.
/// </summary>
/// <remarks>
/// <para>Implementations are safe for concurrent use. A blob handed out by <see cref="GetAsync"/> is owned by the
/// caller and never changed afterwards. A put is durable to the tier's own standard when it returns (RocksDB: in the
/// write-ahead log; Redis: acknowledged by the server), and is all-or-nothing to readers: a reader sees the old blob,
/// the new one, or none, never part of one.</para>
/// <para>A tier that cannot be reached, or fails, throws <see cref="KvTierUnavailableException"/> (or lets the client
/// library's error through); the manager marks it down, skips it and probes it again. A stored blob that cannot be
/// handed out as it is (a piece missing, a length over the limit) is a <see cref="Storage.KvBlobException"/>.</para>
/// </remarks>
public interface IKvTier : IAsyncDisposable
{
    /// <summary>A short name for logs, statistics and the CLI (<c>memory</c>, <c>rocksdb</c>, <c>redis</c>).</summary>
    string Name { get; }

    /// <summary>Gets a blob, or null when absent (also when it expired, or belongs to another namespace).</summary>
    ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default);

    /// <summary>Stores a blob, replacing an older one under the same key. The tier copies or writes the bytes; the caller keeps its buffer.</summary>
    ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default);

    /// <summary>Removes a blob; false when it was absent.</summary>
    ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default);

    /// <summary>Whether a blob exists.</summary>
    ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default);

    /// <summary>Every key held, in all namespaces or in <paramref name="ns"/> only, in no particular order. Entries
    /// written or removed during the listing may or may not appear.</summary>
    IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, CancellationToken cancellationToken = default);

    /// <summary>Counts of what the tier holds and has done since it was opened.</summary>
    ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default);

    /// <summary>Checks that the tier answers (a cheap round trip); throws as an operation would when it does not.</summary>
    ValueTask ProbeAsync(CancellationToken cancellationToken = default);
}
