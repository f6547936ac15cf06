using System.Globalization;

namespace KvFusion.Storage.RocksDb;

/// <summary>Settings of a <see cref="RocksDbTier"/> (docs/storage-rocksdb.md).</summary>
public sealed record RocksDbTierOptions
{
    /// <summary>The folder used when none is configured: with no configuration, everything is stored under <c>./data</c>.</summary>
    public const string DefaultPath = "./data";

    /// <summary>The database folder (created when missing); relative paths are resolved against the current folder when the tier opens.</summary>
    public string Path { get; init; } = DefaultPath;

    /// <summary>Bytes of stored blobs kept; past it the least recently used entries are evicted. 0 means no budget.</summary>
    public long ByteBudget { get; init; }

    /// <summary>
    /// Sync the write-ahead log to the disk on every put and remove, so an acknowledged write survives a power loss
    /// or an OS crash. Off by default: the log is written (not synced) before a put returns, which already survives
    /// a kill of the process.
    /// </summary>
    public bool SyncWrites { get; init; }

    /// <summary>The largest blob stored or handed out; a larger put is an <see cref="ArgumentException"/>, a larger stored value a <see cref="Cache.Storage.KvBlobException"/>.</summary>
    public long MaxValueBytes { get; init; } = 1L << 30;

    /// <summary>Bytes of RocksDB's block cache (index, filter and metadata blocks, and values kept in the tree); 0 disables it.</summary>
    public long BlockCacheBytes { get; init; } = 64L << 20;

    /// <summary>Values of at least this many bytes are kept in RocksDB blob files instead of the tree, so compaction does
    /// not rewrite them; 0 keeps every value in the tree.</summary>
    public long BlobFileThresholdBytes { get; init; } = 64L << 10;

    /// <summary>Bytes one column family buffers in memory before it is flushed to a table file.</summary>
    public long WriteBufferBytes { get; init; } = 64L << 20;

    /// <summary>
    /// Memtables of <see cref="WriteBufferBytes"/> a data column family may hold (2 to 16): the one being written and
    /// the full ones waiting for their flush. A flush syncs its blob files to the disk, so a burst of large puts
    /// outruns it; when every memtable is full, RocksDB stops writes until one flush ends. More memtables absorb
    /// longer bursts at the cost of up to this many times <see cref="WriteBufferBytes"/> of memory per busy model.
    /// </summary>
    public int WriteBufferCount { get; init; } = 4;

    /// <summary>Background threads for flushes and compactions together.</summary>
    public int MaxBackgroundJobs { get; init; } = 2;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Path) || Path.IndexOfAny(System.IO.Path.GetInvalidPathChars()) >= 0)
        {
            throw new ArgumentException($"{nameof(Path)} must be a folder path; got '{Path}'.");
        }

        if (ByteBudget < 0)
        {
            throw new ArgumentException(Invariant($"{nameof(ByteBudget)} must be 0 (no budget) or more; got {ByteBudget}."));
        }

        if (MaxValueBytes < 1 || MaxValueBytes > Array.MaxLength)
        {
            throw new ArgumentException(Invariant($"{nameof(MaxValueBytes)} must be from 1 to {Array.MaxLength}; got {MaxValueBytes}."));
        }

        if (BlockCacheBytes < 0)
        {
            throw new ArgumentException(Invariant($"{nameof(BlockCacheBytes)} must be 0 (no cache) or more; got {BlockCacheBytes}."));
        }

        if (BlobFileThresholdBytes < 0)
        {
            throw new ArgumentException(Invariant($"{nameof(BlobFileThresholdBytes)} must be 0 (no blob files) or more; got {BlobFileThresholdBytes}."));
        }

        if (WriteBufferBytes < MinWriteBufferBytes)
        {
            throw new ArgumentException(Invariant($"{nameof(WriteBufferBytes)} must be at least {MinWriteBufferBytes}; got {WriteBufferBytes}."));
        }

        if (WriteBufferCount is < MinWriteBufferCount or > MaxWriteBufferCount)
        {
            throw new ArgumentException(Invariant($"{nameof(WriteBufferCount)} must be from {MinWriteBufferCount} to {MaxWriteBufferCount}; got {WriteBufferCount}."));
        }

        if (MaxBackgroundJobs is < 1 or > MaxBackgroundJobsLimit)
        {
            throw new ArgumentException(Invariant($"{nameof(MaxBackgroundJobs)} must be from 1 to {MaxBackgroundJobsLimit}; got {MaxBackgroundJobs}."));
        }
    }

    // Below this a memtable holds too little to be worth a flush; RocksDB's own floor is 64 KiB.
    private const long MinWriteBufferBytes = 1L << 20;

    private const int MaxBackgroundJobsLimit = 256;

    // One memtable being written plus at least one being flushed; past 16 a burst is better slowed than held in memory.
    private const int MinWriteBufferCount = 2;
    private const int MaxWriteBufferCount = 16;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
