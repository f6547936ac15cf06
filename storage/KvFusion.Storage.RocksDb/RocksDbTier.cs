using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RocksDbSharp;
using static KvFusion.Storage.RocksDb.RocksDbLayout;

namespace KvFusion.Storage.RocksDb;

/// <summary>
/// The embedded default tier: KV containers in RocksDB on local disk (docs/storage-rocksdb.md). One column family per
/// model holds the blobs by <c>{tenant}/{entry}</c>; two more hold each entry's size and last access, so the byte
/// budget and the least-recently-used order survive restarts and crashes with the data they describe.
/// </summary>
/// <remarks>
/// <para>Every put, remove and eviction is one atomic <see cref="WriteBatch"/> over data and metadata, written to the
/// write-ahead log before it returns (synced too with <see cref="RocksDbTierOptions.SyncWrites"/>). Writers take
/// turns; readers never wait for them. Calls block on RocksDB's own I/O, which for this tier is a local disk.</para>
/// <para>A RocksDB error is a <see cref="KvTierUnavailableException"/> naming the tier, its folder and the cause;
/// every call after <see cref="DisposeAsync"/> is an <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed class RocksDbTier : IKvTier
{
    /// <summary>The tier's <see cref="Name"/>.</summary>
    public const string TierName = "rocksdb";

    private const int ListPageSize = 1024;

    // A get moves its entry to the front of the order only when the entry has fallen out of the newest eighth of it
    // (more than Entries/8 puts and moves happened since its last one). A hot entry then costs one small write per
    // Entries/8 others instead of one per read, and it still cannot be evicted while it is in that newest eighth.
    private const int RefreshFraction = 8;

    private readonly RocksDbTierOptions _options;
    private readonly ILogger _logger;
    private readonly DbOptions _dbOptions;
    private readonly ColumnFamilyOptions _dataOptions;
    private readonly ColumnFamilyOptions _metaOptions;
    private readonly RocksDbSharp.Cache? _blockCache;
    private readonly RocksDbSharp.RocksDb _db;
    private readonly ColumnFamilyHandle _meta;
    private readonly ColumnFamilyHandle _order;
    private readonly WriteOptions _writes;
    private readonly WriteOptions _hints;
    private readonly ReadOptions _reads = new();
    private readonly ConcurrentDictionary<string, ColumnFamilyHandle> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _pendingRefreshes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Changed under _writeGate only; read anywhere.
    private long _bytes;
    private long _entries;
    private long _lastSequence;

    // Every order key below this sequence is deleted: evictions take the oldest first, and a move or replace deletes
    // its old key. Seeking here instead of to the first key skips the tombstones a queue-like column family piles up
    // at its head until compaction drops them.
    private long _orderFloor;

    private long _hits;
    private long _misses;
    private long _puts;
    private long _evictions;
    private long _rejections;
    private int _active;
    private int _closing;

    /// <summary>Opens (creating when missing) the database in <see cref="RocksDbTierOptions.Path"/>.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="KvTierUnavailableException">The database cannot be opened (the message says why).</exception>
    public RocksDbTier(RocksDbTierOptions? options = null, ILogger<RocksDbTier>? logger = null)
    {
        _options = options ?? new RocksDbTierOptions();
        _options.Validate();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        DatabasePath = System.IO.Path.GetFullPath(_options.Path);

        _blockCache = _options.BlockCacheBytes > 0 ? RocksDbSharp.Cache.CreateLru((ulong)_options.BlockCacheBytes) : null;
        var table = new BlockBasedTableOptions();
        table = _blockCache is null ? table.SetNoBlockCache(true) : table.SetBlockCache(_blockCache);
        _dbOptions = new DbOptions()
            .SetCreateIfMissing(true)
            .SetCreateMissingColumnFamilies(true)
            // After a crash, recover the log up to its first damaged record: a consistent prefix of the writes.
            .SetWalRecoveryMode(Recovery.PointInTime)
            .SetKeepLogFileNum(4);
        Native.Instance.rocksdb_options_set_max_background_jobs(_dbOptions.Handle, _options.MaxBackgroundJobs);
        // Containers are compressed by their codec already (and raw fp16 barely compresses): no second compression.
        _dataOptions = new ColumnFamilyOptions()
            .SetCompression(Compression.No)
            .SetWriteBufferSize((ulong)_options.WriteBufferBytes)
            .SetBlockBasedTableFactory(table);
        // Full memtables queue for their flush (each flushed on its own, not merged) instead of stopping writes at
        // RocksDB's default of two: bench store showed "Stopping writes because we have 2 immutable memtables".
        Native.Instance.rocksdb_options_set_max_write_buffer_number(_dataOptions.Handle, _options.WriteBufferCount);
        Native.Instance.rocksdb_options_set_min_write_buffer_number_to_merge(_dataOptions.Handle, 1);
        if (_options.BlobFileThresholdBytes > 0)
        {
            Native.Instance.rocksdb_options_set_enable_blob_files(_dataOptions.Handle, 1);
            Native.Instance.rocksdb_options_set_min_blob_size(_dataOptions.Handle, (ulong)_options.BlobFileThresholdBytes);
            // Evicted and replaced values are only reclaimed when their blob files are rewritten.
            Native.Instance.rocksdb_options_set_enable_blob_gc(_dataOptions.Handle, 1);
        }

        _metaOptions = new ColumnFamilyOptions().SetCompression(Compression.No).SetBlockBasedTableFactory(table);
        _writes = new WriteOptions().SetSync(_options.SyncWrites);
        // Access-order moves are hints: losing the last few to a power loss only ages those entries a little.
        _hints = new WriteOptions().SetSync(false);

        try
        {
            Directory.CreateDirectory(DatabasePath);
            var families = new ColumnFamilies(_metaOptions) { { MetaFamily, _metaOptions }, { OrderFamily, _metaOptions } };
            var modelFamilies = new List<(string Fingerprint, string Family)>();
            if (RocksDbSharp.RocksDb.TryListColumnFamilies(_dbOptions, DatabasePath, out var existing))
            {
                foreach (var name in existing)
                {
                    if (name == ColumnFamilies.DefaultName || name is MetaFamily or OrderFamily)
                    {
                        continue;
                    }

                    if (FingerprintOf(name) is { } fingerprint)
                    {
                        families.Add(name, _dataOptions);
                        modelFamilies.Add((fingerprint, name));
                    }
                    else
                    {
                        // RocksDB opens a database only with all of its column families; this one is kept, unused.
                        families.Add(name, _metaOptions);
                        _logger.LogWarning("The rocksdb tier at {Path} has a column family it does not use: {Family}", DatabasePath, name);
                    }
                }
            }

            _db = RocksDbSharp.RocksDb.Open(_dbOptions, DatabasePath, families);
            _meta = _db.GetColumnFamily(MetaFamily);
            _order = _db.GetColumnFamily(OrderFamily);
            foreach (var (fingerprint, family) in modelFamilies)
            {
                _models[fingerprint] = _db.GetColumnFamily(family);
            }
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException or IOException or UnauthorizedAccessException)
        {
            throw new KvTierUnavailableException($"The {TierName} tier cannot open {DatabasePath}: {e.Message}", e);
        }

        try
        {
            LoadTotals();
            EvictToBudget();
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            _db.Dispose();
            throw new KvTierUnavailableException($"The {TierName} tier cannot read its metadata in {DatabasePath}: {e.Message}", e);
        }

        _logger.LogInformation("Opened the {Tier} tier at {Path}: {Entries} entries, {Bytes} bytes in {Models} model column families, budget {Budget} bytes",
            TierName, DatabasePath, _entries, _bytes, _models.Count, _options.ByteBudget);
    }

    /// <summary>Opens the database with options from configuration or dependency injection.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="KvTierUnavailableException">The database cannot be opened.</exception>
    public RocksDbTier(IOptions<RocksDbTierOptions> options, ILogger<RocksDbTier>? logger = null)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Value, logger)
    {
    }

    /// <inheritdoc />
    public string Name => TierName;

    /// <summary>The database folder, as a full path.</summary>
    public string DatabasePath { get; }

    /// <summary>The settings.</summary>
    public RocksDbTierOptions Options => _options;

    /// <inheritdoc />
    /// <exception cref="KvBlobException">The stored value is larger than <see cref="RocksDbTierOptions.MaxValueBytes"/>.</exception>
    public ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var names = EntryKeys.Of(key);
        Enter();
        try
        {
            if (!_models.TryGetValue(names.Fingerprint, out var family))
            {
                Interlocked.Increment(ref _misses);
                return ValueTask.FromResult<ReadOnlyMemory<byte>?>(null);
            }

            var value = Call(() => ReadValue(names.Data, family), "read");
            if (value is null)
            {
                Interlocked.Increment(ref _misses);
                return ValueTask.FromResult<ReadOnlyMemory<byte>?>(null);
            }

            if (value.Bytes is null)
            {
                throw new KvBlobException(string.Create(CultureInfo.InvariantCulture,
                    $"{TierName} entry {key}: {value.Length} bytes, more than the {_options.MaxValueBytes} of {nameof(RocksDbTierOptions.MaxValueBytes)}."));
            }

            Interlocked.Increment(ref _hits);
            NoteAccess(names.Meta);
            return ValueTask.FromResult<ReadOnlyMemory<byte>?>(value.Bytes);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The blob is larger than <see cref="RocksDbTierOptions.MaxValueBytes"/>, or the key is malformed.</exception>
    /// <remarks>A blob larger than the whole <see cref="RocksDbTierOptions.ByteBudget"/> is not stored: it is counted
    /// in <see cref="KvTierStatistics.Rejections"/>, and an older blob under the key is removed so no stale one stays.</remarks>
    public async ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        var names = EntryKeys.Of(key);
        if (blob.Length > _options.MaxValueBytes)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"A blob of {blob.Length} bytes is larger than {nameof(RocksDbTierOptions.MaxValueBytes)} ({_options.MaxValueBytes}) of the {TierName} tier."), nameof(blob));
        }

        var budget = _options.ByteBudget;
        var refused = budget > 0 && blob.Length > budget;
        Enter();
        try
        {
            // The value is copied into the batch before the gate when its model's column family exists, so concurrent
            // writers make that copy in parallel and hold the gate only to read metadata and write. The data key is
            // the batch's first operation; nothing added under the gate touches it (evictions never take the entry
            // being written), so the batch means what it meant when built in one piece.
            using var batch = new WriteBatch();
            var valueAdded = false;
            if (!refused && _models.TryGetValue(names.Fingerprint, out var knownFamily))
            {
                batch.Put(names.Data, blob.Span, knownFamily);
                valueAdded = true;
            }

            await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ApplyPendingRefreshes();
                var family = ModelFamily(names.Fingerprint);
                if (!refused && !valueAdded)
                {
                    batch.Put(names.Data, blob.Span, family);
                }

                var old = ReadMeta(names.Meta);
                if (old is { } previous)
                {
                    batch.Delete(OrderKey(previous.Sequence, names.Meta), _order);
                }

                if (refused)
                {
                    batch.Delete(names.Data, family).Delete(names.Meta, _meta);
                    Call(() => _db.Write(batch, _writes), "write");
                    Commit(-(old?.Size ?? 0), old is null ? 0 : -1);
                    Interlocked.Increment(ref _rejections);
                    _logger.LogWarning("The {Tier} tier refused {Key}: {Length} bytes, more than its whole budget of {Budget}", TierName, key, blob.Length, budget);
                    return;
                }

                var sequence = _lastSequence + 1;
                batch.Put(names.Meta, MetaValue(blob.Length, sequence), _meta)
                    .Put(OrderKey(sequence, names.Meta), SizeValue(blob.Length), _order);
                var bytesAfter = Interlocked.Read(ref _bytes) - (old?.Size ?? 0) + blob.Length;
                var floor = _orderFloor;
                var (evicted, freed) = budget > 0 && bytesAfter > budget ? AddEvictions(batch, bytesAfter - budget, names.Meta, out floor) : (0, 0L);
                Call(() => _db.Write(batch, _writes), "write");
                Volatile.Write(ref _lastSequence, sequence);
                _orderFloor = floor;
                Commit(blob.Length - (old?.Size ?? 0) - freed, (old is null ? 1 : 0) - evicted);
                Interlocked.Increment(ref _puts);
                if (evicted > 0)
                {
                    Interlocked.Add(ref _evictions, evicted);
                    _logger.LogDebug("The {Tier} tier evicted {Count} entries ({Bytes} bytes) to store {Key}", TierName, evicted, freed, key);
                }
            }
            finally
            {
                _writeGate.Release();
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        var names = EntryKeys.Of(key);
        Enter();
        try
        {
            await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ApplyPendingRefreshes();
                var old = ReadMeta(names.Meta);
                _models.TryGetValue(names.Fingerprint, out var family);
                var hasData = family is not null && Call(() => _db.HasKey(names.Data, family, null), "read");
                if (old is null && !hasData)
                {
                    return false;
                }

                using var batch = new WriteBatch();
                if (family is not null)
                {
                    batch.Delete(names.Data, family);
                }

                if (old is { } previous)
                {
                    batch.Delete(names.Meta, _meta).Delete(OrderKey(previous.Sequence, names.Meta), _order);
                }

                Call(() => _db.Write(batch, _writes), "write");
                Commit(-(old?.Size ?? 0), old is null ? 0 : -1);
                return true;
            }
            finally
            {
                _writeGate.Release();
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var names = EntryKeys.Of(key);
        Enter();
        try
        {
            return ValueTask.FromResult(_models.TryGetValue(names.Fingerprint, out var family) && Call(() => _db.HasKey(names.Data, family, null), "read"));
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc />
    /// <remarks>Reads the metadata column family in pages, so a slow consumer holds no iterator and does not keep the tier from closing.</remarks>
    public async IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (ns is { Tenant: null })
        {
            throw new ArgumentException("The namespace is empty (default); pass null to list every namespace.", nameof(ns));
        }

        var prefix = ns is { } n ? MetaPrefix(n) : [];
        byte[]? resumeAt = null;
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = ReadPage(prefix, ref resumeAt);
            foreach (var key in page)
            {
                yield return key;
            }

            // Lets other work run between pages of a long listing.
            await Task.Yield();
        }
        while (resumeAt is not null);
    }

    /// <inheritdoc />
    public ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closing) != 0, this);
        return ValueTask.FromResult(new KvTierStatistics
        {
            Tier = TierName,
            Entries = Interlocked.Read(ref _entries),
            Bytes = Interlocked.Read(ref _bytes),
            ByteBudget = _options.ByteBudget,
            Hits = Interlocked.Read(ref _hits),
            Misses = Interlocked.Read(ref _misses),
            Puts = Interlocked.Read(ref _puts),
            Evictions = Interlocked.Read(ref _evictions),
            Rejections = Interlocked.Read(ref _rejections),
        });
    }

    /// <inheritdoc />
    public ValueTask ProbeAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Enter();
        try
        {
            // A point read of the metadata family goes through the same read path as every get.
            Call(() => _db.HasKey([0], _meta, null), "read");
            return ValueTask.CompletedTask;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Closes the database after the calls in progress have finished; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            await _closed.Task.ConfigureAwait(false);
            return;
        }

        if (Volatile.Read(ref _active) == 0)
        {
            _drained.TrySetResult();
        }

        await _drained.Task.ConfigureAwait(false);
        try
        {
            // Nothing else runs now: the last access-order moves go in before the database closes.
            ApplyPendingRefreshes();
            _db.Dispose();
            _logger.LogInformation("Closed the {Tier} tier at {Path}", TierName, DatabasePath);
        }
        finally
        {
            _writeGate.Dispose();
            _closed.TrySetResult();
        }
    }

    /// <summary>The stored bytes under <paramref name="key"/> exactly as RocksDB holds them (tests and tools).</summary>
    internal byte[]? ReadRaw(TierKey key)
    {
        var names = EntryKeys.Of(key);
        Enter();
        try
        {
            return _models.TryGetValue(names.Fingerprint, out var family) ? Call(() => _db.Get(names.Data, family, null), "read") : null;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Overwrites the stored bytes under an existing entry's key, leaving its metadata as it is: damage as a
    /// disk or another writer would do it (tests and tools).</summary>
    /// <exception cref="InvalidOperationException">The entry's model has no column family yet.</exception>
    internal void WriteRaw(TierKey key, ReadOnlySpan<byte> bytes)
    {
        var names = EntryKeys.Of(key);
        Enter();
        try
        {
            if (!_models.TryGetValue(names.Fingerprint, out var family))
            {
                throw new InvalidOperationException($"The {TierName} tier has no column family for model {names.Fingerprint}.");
            }

            _db.Put(names.Data, bytes, family, _writes);
        }
        finally
        {
            Exit();
        }
    }

    private void Enter()
    {
        Interlocked.Increment(ref _active);
        if (Volatile.Read(ref _closing) != 0)
        {
            Exit();
            throw new ObjectDisposedException(nameof(RocksDbTier), $"The {TierName} tier at {DatabasePath} is closed.");
        }
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref _active) == 0 && Volatile.Read(ref _closing) != 0)
        {
            _drained.TrySetResult();
        }
    }

    private T Call<T>(Func<T> operation, string what)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw Unavailable(what, e);
        }
    }

    private void Call(Action operation, string what)
    {
        try
        {
            operation();
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw Unavailable(what, e);
        }
    }

    private KvTierUnavailableException Unavailable(string what, Exception cause)
    {
        _logger.LogError(cause, "The {Tier} tier at {Path} failed to {Operation}", TierName, DatabasePath, what);
        return new KvTierUnavailableException($"The {TierName} tier at {DatabasePath} failed to {what}: {cause.Message}", cause);
    }

    private void Commit(long bytes, long entries)
    {
        Interlocked.Add(ref _bytes, bytes);
        Interlocked.Add(ref _entries, entries);
    }

    /// <summary>The data column family of a model, created on its first put (under the write gate).</summary>
    private ColumnFamilyHandle ModelFamily(string fingerprint)
    {
        if (_models.TryGetValue(fingerprint, out var family))
        {
            return family;
        }

        family = Call(() => _db.CreateColumnFamily(_dataOptions, FamilyOf(fingerprint)), "create a column family");
        _models[fingerprint] = family;
        _logger.LogInformation("The {Tier} tier created column family {Family}", TierName, FamilyOf(fingerprint));
        return family;
    }

    private (long Size, long Sequence)? ReadMeta(byte[] metaKey)
    {
        Span<byte> value = stackalloc byte[MetaValueBytes];
        var found = false;
        try
        {
            found = _db.GetFixedSizeValue(metaKey, value, _meta, null);
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw Unavailable("read", e);
        }

        return found && TryReadMetaValue(value, out var size, out var sequence) ? (size, sequence) : null;
    }

    /// <summary>Notes a read for the access order: queued, and applied now when no writer holds the gate, else by the next writer.</summary>
    private void NoteAccess(byte[] metaKey)
    {
        if (ReadMeta(metaKey) is not { } meta || Volatile.Read(ref _lastSequence) - meta.Sequence < Math.Max(1, Interlocked.Read(ref _entries) / RefreshFraction))
        {
            return;
        }

        _pendingRefreshes.TryAdd(Convert.ToBase64String(metaKey), 0);
        if (_writeGate.Wait(0))
        {
            try
            {
                ApplyPendingRefreshes();
            }
            finally
            {
                _writeGate.Release();
            }
        }
    }

    /// <summary>Moves the queued entries to the front of the access order in one batch (under the write gate).</summary>
    private void ApplyPendingRefreshes()
    {
        if (_pendingRefreshes.IsEmpty)
        {
            return;
        }

        using var batch = new WriteBatch();
        var sequence = _lastSequence;
        foreach (var pending in _pendingRefreshes.Keys)
        {
            _pendingRefreshes.TryRemove(pending, out _);
            var metaKey = Convert.FromBase64String(pending);
            // Gone since the read (removed or evicted): nothing to move, and nothing may be written back for it.
            if (ReadMeta(metaKey) is not { } meta)
            {
                continue;
            }

            sequence++;
            batch.Delete(OrderKey(meta.Sequence, metaKey), _order)
                .Put(OrderKey(sequence, metaKey), SizeValue(meta.Size), _order)
                .Put(metaKey, MetaValue(meta.Size, sequence), _meta);
        }

        if (sequence == _lastSequence)
        {
            return;
        }

        try
        {
            _db.Write(batch, _hints);
            Volatile.Write(ref _lastSequence, sequence);
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            // Only the order is lost; the operation that applies it goes on and meets the failure itself.
            _logger.LogWarning(e, "The {Tier} tier at {Path} could not record recent reads in its access order", TierName, DatabasePath);
        }
    }

    /// <summary>Adds to <paramref name="batch"/> the deletion of the least recently used entries until at least
    /// <paramref name="needed"/> bytes are freed, never the entry <paramref name="protectedMetaKey"/>.</summary>
    /// <remarks>The caller sets <see cref="_orderFloor"/> to <paramref name="floor"/> once the batch is written.</remarks>
    private (int Count, long Bytes) AddEvictions(WriteBatch batch, long needed, byte[]? protectedMetaKey, out long floor)
    {
        var count = 0;
        var freed = 0L;
        var lastVisited = -1L;
        try
        {
            using var order = _db.NewIterator(_order, null);
            for (order.Seek(OrderKey(_orderFloor, [])); order.Valid() && freed < needed; order.Next())
            {
                var orderKey = order.GetKeySpan();
                lastVisited = SequenceOf(orderKey);
                var metaKey = orderKey[Math.Min(SequenceBytes, orderKey.Length)..];
                if (protectedMetaKey is not null && metaKey.SequenceEqual(protectedMetaKey))
                {
                    continue;
                }

                batch.Delete(orderKey, _order).Delete(metaKey, _meta);
                if (TryParseMetaKey(metaKey, out var fingerprint, out var tenant, out var entryName) && _models.TryGetValue(fingerprint, out var family))
                {
                    batch.Delete(DataKey(tenant, entryName), family);
                }

                freed += ReadSizeValue(order.GetValueSpan());
                count++;
            }
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw Unavailable("read its access order", e);
        }

        // Every key visited is deleted by the batch: evicted, or the protected entry's old key, which its put replaces.
        floor = Math.Max(_orderFloor, lastVisited + 1);
        return (count, freed);
    }

    /// <summary>Evicts what is over the budget now (on open, after the budget was lowered).</summary>
    private void EvictToBudget()
    {
        var over = _bytes - _options.ByteBudget;
        if (_options.ByteBudget == 0 || over <= 0)
        {
            return;
        }

        using var batch = new WriteBatch();
        var (count, freed) = AddEvictions(batch, over, protectedMetaKey: null, out var floor);
        _db.Write(batch, _writes);
        _orderFloor = floor;
        Commit(-freed, -count);
        Interlocked.Add(ref _evictions, count);
        _logger.LogInformation("The {Tier} tier evicted {Count} entries ({Bytes} bytes) to fit its budget of {Budget} bytes", TierName, count, freed, _options.ByteBudget);
    }

    /// <summary>The byte total, the entry count and the last sequence, from the metadata: the index is the database.</summary>
    private void LoadTotals()
    {
        long bytes = 0, entries = 0, last = 0;
        using (var meta = _db.NewIterator(_meta, null))
        {
            for (meta.SeekToFirst(); meta.Valid(); meta.Next())
            {
                if (TryReadMetaValue(meta.GetValueSpan(), out var size, out var sequence))
                {
                    bytes += size;
                    entries++;
                    last = Math.Max(last, sequence);
                }
            }
        }

        using (var order = _db.NewIterator(_order, null))
        {
            if (order.SeekToLast().Valid())
            {
                last = Math.Max(last, SequenceOf(order.GetKeySpan()));
            }
        }

        _bytes = bytes;
        _entries = entries;
        _lastSequence = last;
    }

    /// <summary>Up to <see cref="ListPageSize"/> keys under <paramref name="prefix"/> from <paramref name="resumeAt"/>
    /// on; <paramref name="resumeAt"/> becomes the first key of the next page, or null after the last.</summary>
    private List<TierKey> ReadPage(byte[] prefix, ref byte[]? resumeAt)
    {
        var page = new List<TierKey>();
        Enter();
        try
        {
            using var meta = _db.NewIterator(_meta, null);
            meta.Seek(resumeAt ?? prefix);
            resumeAt = null;
            for (var visited = 0; meta.Valid(); meta.Next(), visited++)
            {
                var metaKey = meta.GetKeySpan();
                if (!metaKey.StartsWith(prefix))
                {
                    break;
                }

                if (visited == ListPageSize)
                {
                    resumeAt = metaKey.ToArray();
                    break;
                }

                if (TryParseMetaKey(metaKey, out var fingerprint, out var tenant, out var entryName)
                    && KvNamespace.IsValidFingerprint(fingerprint) && KvNamespace.IsValidTenant(tenant)
                    && KvEntryName.TryParse(entryName, out var cacheKey))
                {
                    page.Add(new TierKey(new KvNamespace(tenant, fingerprint), cacheKey.Value));
                }
                else
                {
                    _logger.LogWarning("The {Tier} tier at {Path} skipped a stored key it cannot parse: {Key}", TierName, DatabasePath, Convert.ToHexString(metaKey));
                }
            }
        }
        catch (Exception e) when (e is RocksDbException or RocksDbSharpException)
        {
            throw Unavailable("list", e);
        }
        finally
        {
            Exit();
        }

        return page;
    }

    /// <summary>The three keys of one entry.</summary>
    private readonly record struct EntryKeys(string Fingerprint, byte[] Data, byte[] Meta)
    {
        public static EntryKeys Of(TierKey key)
        {
            if (key.Namespace.Tenant is null)
            {
                throw new ArgumentException("The key's namespace is empty (default); create it with a tenant and a model fingerprint.", nameof(key));
            }

            var entryName = key.EntryName;
            var ns = key.Namespace;
            return new EntryKeys(ns.ModelFingerprint, DataKey(ns.Tenant, entryName), MetaKey(ns.ModelFingerprint, ns.Tenant, entryName));
        }
    }

    /// <summary>
    /// The value under <paramref name="dataKey"/>, read through a pinnable slice: RocksDB hands out its own buffer (the
    /// memtable's, the block cache's, or the one a blob was read into), and the bytes are copied once, into the array
    /// returned, which is not zeroed first. (A plain get copies into a malloc'd buffer first, and the span
    /// deserializer then copies again.) The length is checked on RocksDB's buffer before anything is allocated.
    /// </summary>
    private StoredValue? ReadValue(byte[] dataKey, ColumnFamilyHandle family)
    {
        var slice = Native.Instance.rocksdb_get_pinned_cf(_db.Handle, _reads.Handle, family.Handle, dataKey, (UIntPtr)dataKey.Length);
        if (slice == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            var data = Native.Instance.rocksdb_pinnableslice_value(slice, out var length);
            // A slice is only returned for a key that exists; an empty value may come without a data pointer.
            var size = checked((long)(ulong)length);
            if (size == 0 || data == IntPtr.Zero)
            {
                return new StoredValue([], 0);
            }

            if (size > _options.MaxValueBytes)
            {
                return new StoredValue(null, size);
            }

            var bytes = GC.AllocateUninitializedArray<byte>((int)size);
            System.Runtime.InteropServices.Marshal.Copy(data, bytes, 0, bytes.Length);
            return new StoredValue(bytes, size);
        }
        finally
        {
            Native.Instance.rocksdb_pinnableslice_destroy(slice);
        }
    }

    /// <summary>A stored value: its bytes, or only its length when it is over the limit (never copied then).</summary>
    private sealed record StoredValue(byte[]? Bytes, long Length);
}
