using System.Collections.Concurrent;
using System.Threading.Channels;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using Microsoft.Extensions.Logging;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// One lower tier inside the manager: its health, its bounded write-behind queue (one consumer, so writes reach the
/// tier in the order they were queued), the newest queued operation per key (so a superseded write is skipped and a
/// queued remove hides the tier's old copy from reads), and what it must catch up with after an outage.
/// </summary>
internal sealed class TierLane
{
    private readonly KvTierManagerOptions _options;
    private readonly KvContainerReadOptions _readOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<WriteJob> _queue;
    private readonly ByteGate _queuedBytes;
    private readonly ConcurrentDictionary<TierKey, QueuedOp> _latest = new();
    private readonly Lock _catchUpLock = new();
    private readonly Dictionary<TierKey, bool> _catchUp = [];
    private readonly Queue<TierKey> _catchUpOrder = new();
    private int _state;
    private int _queuedCount;
    private int _catchingUp;
    private string? _lastError;
    private long _outages;
    private long _catchUpLost;
    private long _writesDone;
    private long _failures;
    private long _skippedReads;
    private long _hits;
    private long _lastReadDone;

    public TierLane(IKvTier tier, KvCodecSpec? codec, IReadOnlyList<KvCodecSpec> levels, KvTierManagerOptions options, TimeProvider time, ILogger logger)
    {
        Tier = tier;
        Codec = codec;
        Levels = levels;
        _readOptions = KvContainerReadOptions.Default with { Limits = options.Limits, Profiles = options.Profiles };
        _options = options;
        _time = time;
        _logger = logger;
        _queue = Channel.CreateBounded<WriteJob>(new BoundedChannelOptions(options.WriteQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _queuedBytes = new ByteGate(options.WriteQueueBytes);
    }

    public IKvTier Tier { get; }

    /// <summary>The codec the tier stores entries with; null to store blobs as given.</summary>
    public KvCodecSpec? Codec { get; }

    /// <summary>Extra levels the tier keeps of every chunk (<see cref="KvStoredLevels"/>).</summary>
    public IReadOnlyList<KvCodecSpec> Levels { get; }

    /// <summary>
    /// The time a read that ran from <paramref name="started"/> to <paramref name="done"/> (timestamps) is charged:
    /// from its start, or from the previous read's end when reads overlapped. Concurrent reads share the link, so the
    /// k-th to finish waited for the ones before it; charged its own share, each read costs what the controller adds
    /// up (the first one keeps the round trip).
    /// </summary>
    public TimeSpan ReadTime(long started, long done, long frequency)
    {
        long previous;
        do
        {
            previous = Volatile.Read(ref _lastReadDone);
        }
        while (previous < done && Interlocked.CompareExchange(ref _lastReadDone, done, previous) != previous);

        return TimeSpan.FromSeconds(Math.Max(0, done - Math.Max(started, previous)) / (double)frequency);
    }

    public bool IsUp => Volatile.Read(ref _state) == 0;

    public ChannelReader<WriteJob> Reader => _queue.Reader;

    public int QueuedCount => Volatile.Read(ref _queuedCount);

    public int CatchUpPending
    {
        get
        {
            lock (_catchUpLock)
            {
                return _catchUp.Count;
            }
        }
    }

    /// <summary>Whether a catch-up is taking remembered keys and queueing them now (they are then neither pending nor queued).</summary>
    public bool IsCatchingUp => Volatile.Read(ref _catchingUp) != 0;

    public void BeginCatchUp() => Interlocked.Increment(ref _catchingUp);

    public void EndCatchUp() => Interlocked.Decrement(ref _catchingUp);

    public void CountSkippedRead() => Interlocked.Increment(ref _skippedReads);

    public void CountHit() => Interlocked.Increment(ref _hits);

    public void CountLost(long count) => Interlocked.Add(ref _catchUpLost, count);

    /// <summary>Whether the newest operation this lane has not yet applied to its tier for <paramref name="key"/> is a remove.</summary>
    public bool HasPendingRemove(TierKey key)
    {
        if (_latest.TryGetValue(key, out var op))
        {
            return op.IsRemove;
        }

        lock (_catchUpLock)
        {
            return _catchUp.TryGetValue(key, out var isRemove) && isRemove;
        }
    }

    /// <summary>
    /// The bytes of a put of <paramref name="key"/> queued for this tier and not yet applied, or null: a read sees an
    /// acknowledged write before the tier does, even when host memory could not hold it.
    /// </summary>
    public byte[]? QueuedBlob(TierKey key) => _latest.TryGetValue(key, out var op) ? op.Blob : null;

    /// <summary>
    /// Queues a put or remove, waiting for room (back-pressure); while the tier is down the key is remembered for the
    /// catch-up instead, holding no bytes.
    /// </summary>
    public async ValueTask EnqueueAsync(TierKey key, byte[]? blob, long sequence, CancellationToken cancellationToken)
    {
        if (!IsUp)
        {
            Park(key, blob is null);
            return;
        }

        var bytes = blob?.LongLength ?? 0;
        await _queuedBytes.WaitAsync(bytes, cancellationToken).ConfigureAwait(false);
        _latest.AddOrUpdate(key, static (_, op) => op, static (_, old, op) => op.Sequence > old.Sequence ? op : old, new QueuedOp(sequence, blob));
        try
        {
            // Counted once in the channel (the consumer's decrement may come first; the count is only read as a whole).
            await _queue.Writer.WriteAsync(new WriteJob(key, blob, sequence), cancellationToken).ConfigureAwait(false);
            Interlocked.Increment(ref _queuedCount);
        }
        catch
        {
            _queuedBytes.Release(bytes);
            _latest.TryRemove(KeyValuePair.Create(key, new QueuedOp(sequence, blob)));
            throw;
        }
    }

    /// <summary>Queues a copy of a hit found below (promotion) only when there is room now; false when skipped.</summary>
    public bool TryEnqueuePromotion(TierKey key, byte[] blob, long sequence)
    {
        if (!IsUp || QueuedCount >= _options.WriteQueueCapacity / 2 || _latest.ContainsKey(key))
        {
            return false;
        }

        // Promotions never wait: they are an optimization, and a reader must not stall behind writers.
        if (!_queuedBytes.TryAcquire(blob.LongLength))
        {
            return false;
        }

        Interlocked.Increment(ref _queuedCount);
        if (!_latest.TryAdd(key, new QueuedOp(sequence, blob)) || !_queue.Writer.TryWrite(new WriteJob(key, blob, sequence)))
        {
            _latest.TryRemove(KeyValuePair.Create(key, new QueuedOp(sequence, blob)));
            Done(new WriteJob(key, blob, sequence));
            return false;
        }

        return true;
    }

    /// <summary>Applies one queued job to the tier (the consumer's step); a failure parks it for the catch-up.</summary>
    public async Task ApplyAsync(WriteJob job, CancellationToken stopping)
    {
        var op = new QueuedOp(job.Sequence, job.Blob);
        try
        {
            if (!_latest.TryGetValue(job.Key, out var latest) || latest != op)
            {
                // A newer operation on the key is queued behind this one.
                return;
            }

            if (!IsUp)
            {
                Park(job.Key, op.IsRemove);
                return;
            }

            try
            {
                if (job.Blob is { } original)
                {
                    var blob = InTierCodec(job.Key, original);
                    await RunAsync((t, ct) => AsUnit(t.PutAsync(job.Key, blob, ct)), stopping).ConfigureAwait(false);
                    foreach (var (levelKey, levelBlob) in LevelBlobs(job.Key, original))
                    {
                        await RunAsync((t, ct) => AsUnit(t.PutAsync(levelKey, levelBlob, ct)), stopping).ConfigureAwait(false);
                    }
                }
                else
                {
                    await RunAsync((t, ct) => t.RemoveAsync(job.Key, ct), stopping).ConfigureAwait(false);
                    if (HasLevels(job.Key))
                    {
                        foreach (var level in Levels)
                        {
                            var levelKey = job.Key with { Key = KvStoredLevels.At(job.Key.Key, level) };
                            await RunAsync((t, ct) => t.RemoveAsync(levelKey, ct), stopping).ConfigureAwait(false);
                        }
                    }
                }

                Interlocked.Increment(ref _writesDone);
            }
            catch (KvTierUnavailableException)
            {
                Park(job.Key, op.IsRemove);
            }
            catch (Exception e) when (e is ArgumentException or KvBlobException)
            {
                // The tier refuses this entry (e.g. larger than it stores): retrying cannot help.
                Interlocked.Increment(ref _failures);
                _logger.LogWarning(e, "Tier {Tier} refused {Key}; it will not hold that entry: {Reason}", Tier.Name, job.Key, e.Message);
            }
            catch (Exception e) when (!stopping.IsCancellationRequested)
            {
                // Whatever else went wrong, the consumer lives on and the entry waits for the catch-up.
                MarkDown(e);
                Park(job.Key, op.IsRemove);
            }
        }
        finally
        {
            _latest.TryRemove(KeyValuePair.Create(job.Key, op));
            Done(job);
        }
    }

    /// <summary>
    /// Runs one operation against the tier with the manager's timeout. A failure or timeout marks the tier down and is
    /// rethrown as <see cref="KvTierUnavailableException"/>; an entry-level problem (<see cref="KvBlobException"/>,
    /// <see cref="ArgumentException"/>) and the caller's cancellation pass through unchanged.
    /// </summary>
    public async ValueTask<T> RunAsync<T>(Func<IKvTier, CancellationToken, ValueTask<T>> operation, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.OperationTimeout);
        Task<T> task;
        try
        {
            task = operation(Tier, timeout.Token).AsTask();
        }
        catch (Exception e) when (e is not (KvBlobException or ArgumentException or OperationCanceledException or ObjectDisposedException))
        {
            throw MarkDown(e);
        }

        try
        {
            // WaitAsync bounds the wait even for a client that ignores the token.
            return await task.WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Observe(task);
            throw;
        }
        catch (Exception e) when (e is KvBlobException or ArgumentException)
        {
            throw;
        }
        catch (Exception e)
        {
            Observe(task);
            throw MarkDown(e is OperationCanceledException ? new TimeoutException($"no answer within {_options.OperationTimeout.TotalMilliseconds:0} ms", e) : e);
        }
    }

    /// <summary>Marks the tier down (logging once per outage) and returns the exception to throw.</summary>
    public KvTierUnavailableException MarkDown(Exception cause)
    {
        Interlocked.Increment(ref _failures);
        var reason = cause is TimeoutException ? cause.Message : $"{cause.GetType().Name}: {cause.Message}";
        Volatile.Write(ref _lastError, reason);
        if (Interlocked.Exchange(ref _state, 1) == 0)
        {
            Interlocked.Increment(ref _outages);
            _logger.LogWarning(cause, "Tier {Tier} is down ({Reason}); skipping it and probing every {Interval}", Tier.Name, reason, _options.ProbeInterval);
        }

        return cause as KvTierUnavailableException ?? new KvTierUnavailableException($"Tier {Tier.Name} is unavailable: {reason}", cause);
    }

    public void MarkUp()
    {
        if (Interlocked.Exchange(ref _state, 0) == 1)
        {
            _logger.LogInformation("Tier {Tier} is back; catching up {Pending} entries written or removed meanwhile", Tier.Name, CatchUpPending);
        }
    }

    /// <summary>Takes every remembered key (oldest first) for the catch-up; each is either re-queued or counted lost by the caller.</summary>
    public List<(TierKey Key, bool IsRemove)> TakeCatchUp()
    {
        lock (_catchUpLock)
        {
            var list = new List<(TierKey, bool)>(_catchUp.Count);
            while (_catchUpOrder.TryDequeue(out var key))
            {
                if (_catchUp.Remove(key, out var isRemove))
                {
                    list.Add((key, isRemove));
                }
            }

            return list;
        }
    }

    /// <summary>Queues a catch-up operation unless a newer one for the key is queued already.</summary>
    public ValueTask EnqueueCatchUpAsync(TierKey key, byte[]? blob, long sequence, CancellationToken cancellationToken) =>
        _latest.ContainsKey(key) ? ValueTask.CompletedTask : EnqueueAsync(key, blob, sequence, cancellationToken);

    /// <summary>Whether an operation on <paramref name="key"/> is queued and not yet applied.</summary>
    public bool HasQueued(TierKey key) => _latest.ContainsKey(key);

    public void Complete() => _queue.Writer.TryComplete();

    public KvTierHealth Health() => new()
    {
        Tier = Tier.Name,
        State = IsUp ? KvTierState.Up : KvTierState.Down,
        LastError = Volatile.Read(ref _lastError),
        Outages = Interlocked.Read(ref _outages),
        QueuedWrites = QueuedCount,
        QueuedBytes = _queuedBytes.Used,
        CatchUpPending = CatchUpPending,
        CatchUpLost = Interlocked.Read(ref _catchUpLost),
        WritesDone = Interlocked.Read(ref _writesDone),
        Failures = Interlocked.Read(ref _failures),
        SkippedReads = Interlocked.Read(ref _skippedReads),
        Hits = Interlocked.Read(ref _hits),
    };

    /// <summary>
    /// The blob re-encoded with the tier's codec when it names one and the container uses another; the blob itself
    /// otherwise, and when it is not a container this process can decode (it is stored as it is, and judged on read).
    /// </summary>
    private byte[] InTierCodec(TierKey key, byte[] blob)
    {
        if (Codec is not { } codec)
        {
            return blob;
        }

        try
        {
            if (KvContainerReader.ReadHeader(blob, _readOptions).Codec == codec)
            {
                return blob;
            }

            var contents = KvContainerReader.ReadWithHiddenStates(blob, null, _readOptions);
            var writeOptions = KvContainerWriteOptions.Default with { IncludeTokenIds = contents.Entry.HasTokenIds, Profiles = _options.Profiles };
            return KvContainerWriter.ToArray(contents.Entry, contents.HiddenStates, codec, writeOptions);
        }
        catch (Exception e) when (e is KvContainerException or NotSupportedException)
        {
            _logger.LogWarning(e, "Stored {Key} in tier {Tier} as written, not as {Codec}: {Reason}", key, Tier.Name, codec, e.Message);
            return blob;
        }
    }

    private bool HasLevels(TierKey key) => Levels.Count > 0 && key.Key.Kind == CacheEntryKind.Chunk && !KvStoredLevels.IsLevel(key.Key);

    /// <summary>
    /// The chunk's extra levels, each re-encoded under its level key; none when the tier keeps none, the key is not a
    /// chunk's own, or the blob is not a container this process can decode (logged: the chunk is stored, its levels are not).
    /// </summary>
    private List<(TierKey Key, byte[] Blob)> LevelBlobs(TierKey key, byte[] blob)
    {
        var levels = new List<(TierKey, byte[])>();
        if (!HasLevels(key))
        {
            return levels;
        }

        try
        {
            var contents = KvContainerReader.ReadWithHiddenStates(blob, null, _readOptions);
            var writeOptions = KvContainerWriteOptions.Default with { IncludeTokenIds = contents.Entry.HasTokenIds, Profiles = _options.Profiles };
            foreach (var level in Levels)
            {
                var levelKey = KvStoredLevels.At(key.Key, level);
                var encoded = KvContainerWriter.ToArray(contents.Entry.WithKey(levelKey), contents.HiddenStates, level, writeOptions);
                if (_options.CostModel is { } costs)
                {
                    // A level is read only once the controller picks it, which it does only once its decode cost is
                    // known: decode it once here, off the request path, to measure it.
                    costs.ObserveStoredSize(level, contents.Entry.ByteSize, encoded.Length);
                    var started = _time.GetTimestamp();
                    KvContainerReader.Read(encoded, null, _readOptions);
                    costs.ObserveDecode(level, contents.Entry.ByteSize, _time.GetElapsedTime(started));
                }
                levels.Add((key with { Key = levelKey }, encoded));
            }
        }
        catch (Exception e) when (e is KvContainerException or NotSupportedException)
        {
            _logger.LogWarning(e, "Stored {Key} in tier {Tier} without its levels: {Reason}", key, Tier.Name, e.Message);
            levels.Clear();
        }

        return levels;
    }

    private void Park(TierKey key, bool isRemove)
    {
        lock (_catchUpLock)
        {
            if (!_catchUp.ContainsKey(key))
            {
                _catchUpOrder.Enqueue(key);
            }

            _catchUp[key] = isRemove;
            while (_catchUp.Count > _options.MaxCatchUpEntries && _catchUpOrder.TryDequeue(out var oldest))
            {
                if (_catchUp.Remove(oldest))
                {
                    Interlocked.Increment(ref _catchUpLost);
                    _logger.LogWarning("Tier {Tier} has been down for more than {Max} writes; it will lack {Key} until that entry is written again", Tier.Name, _options.MaxCatchUpEntries, oldest);
                }
            }
        }
    }

    private void Done(WriteJob job)
    {
        _queuedBytes.Release(job.Blob?.LongLength ?? 0);
        Interlocked.Decrement(ref _queuedCount);
    }

    private static async ValueTask<bool> AsUnit(ValueTask put)
    {
        await put.ConfigureAwait(false);
        return true;
    }

    private static void Observe(Task task) =>
        // An abandoned operation may still fail later; observe it so it is not reported as unobserved.
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    internal readonly record struct WriteJob(TierKey Key, byte[]? Blob, long Sequence);

    /// <summary>The newest queued operation of a key: a put holds its bytes (shared, read-only), a remove none.</summary>
    private readonly record struct QueuedOp(long Sequence, byte[]? Blob)
    {
        public bool IsRemove => Blob is null;
    }
}
