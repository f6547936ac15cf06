using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// The tiers stacked: host memory first, then the lower tiers in order (RocksDB, Redis). Writes land in memory and go
/// down asynchronously through a bounded queue per tier (a full queue makes writers wait; nothing acknowledged is
/// dropped silently); reads go down the tiers and promote hits; a blob that fails its container checks is deleted from
/// the tier that held it and the next tier is tried; a tier that errors or times out is marked down, skipped, probed
/// every <see cref="KvTierManagerOptions.ProbeInterval"/>, and caught up with what was written and removed meanwhile.
/// Callers never see a lower tier's failure: requests keep being served from the tiers that answer.
/// </summary>
/// <remarks>
/// The manager is itself an <see cref="IKvTier"/>; <see cref="For"/> gives one namespace as the
/// <see cref="IKvBlobStore"/> that <see cref="ContainerKvStore"/> encodes into. A put is acknowledged once it is in
/// memory (when it fits) and queued for every lower tier that is up, or remembered for one that is down. The catch-up
/// rereads each remembered entry from memory or another tier when the tier is back; an entry no tier holds by then is
/// counted in <see cref="KvTierHealth.CatchUpLost"/> and logged.
/// </remarks>
public sealed class KvTierManager : IKvTier
{
    private readonly TierLane[] _lanes;
    private readonly KvContainerReadOptions _verifyOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _consumers;
    private readonly Task _prober;
    private long _sequence;
    private long _hits;
    private long _misses;
    private long _memoryHits;
    private long _corruptRemoved;
    private long _promotions;
    private int _disposed;

    /// <summary>Stacks <paramref name="memory"/> over <paramref name="lowerTiers"/> (read in that order).</summary>
    /// <exception cref="ArgumentException">The options are invalid, or a tier is listed twice.</exception>
    public KvTierManager(HostMemoryTier memory, IReadOnlyList<IKvTier> lowerTiers, KvTierManagerOptions? options = null, ILogger<KvTierManager>? logger = null, TimeProvider? timeProvider = null)
        : this(memory, ToLowerTiers(lowerTiers), options, logger, timeProvider)
    {
    }

    /// <summary>Stacks <paramref name="memory"/> over <paramref name="lowerTiers"/> (read in that order), each stored with its own codec where it names one.</summary>
    /// <exception cref="ArgumentException">The options are invalid, a tier is listed twice, or a tier's codec is not a codec.</exception>
    public KvTierManager(HostMemoryTier memory, IReadOnlyList<KvLowerTier> lowerTiers, KvTierManagerOptions? options = null, ILogger<KvTierManager>? logger = null, TimeProvider? timeProvider = null)
    {
        Memory = memory ?? throw new ArgumentNullException(nameof(memory));
        ArgumentNullException.ThrowIfNull(lowerTiers);
        Options = options ?? new KvTierManagerOptions();
        Options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _verifyOptions = KvContainerReadOptions.Default with { Limits = Options.Limits, Profiles = Options.Profiles };
        var seen = new HashSet<IKvTier>(ReferenceEqualityComparer.Instance) { memory };
        _lanes = new TierLane[lowerTiers.Count];
        for (var i = 0; i < _lanes.Length; i++)
        {
            var tier = lowerTiers[i]?.Tier ?? throw new ArgumentException($"Lower tier {i} is null.", nameof(lowerTiers));
            if (!seen.Add(tier))
            {
                throw new ArgumentException($"Tier {tier.Name} is listed twice.", nameof(lowerTiers));
            }

            if (lowerTiers[i].Codec is { IsValid: false } bad)
            {
                throw new ArgumentException($"Tier {tier.Name}'s codec '{bad}' is not a codec.", nameof(lowerTiers));
            }

            _lanes[i] = new TierLane(tier, lowerTiers[i].Codec, lowerTiers[i].Levels ?? [], Options, _time, _logger);
        }

        LowerTiers = [.. lowerTiers.Select(t => t.Tier)];
        _consumers = new Task[_lanes.Length];
        for (var i = 0; i < _lanes.Length; i++)
        {
            var lane = _lanes[i];
            _consumers[i] = Task.Run(() => ConsumeAsync(lane));
        }

        _prober = _lanes.Length == 0 ? Task.CompletedTask : Task.Run(ProbeLoopAsync);
    }

    /// <inheritdoc />
    public string Name => "tiered";

    /// <summary>The host-memory tier.</summary>
    public HostMemoryTier Memory { get; }

    /// <summary>The lower tiers, in read order.</summary>
    public IReadOnlyList<IKvTier> LowerTiers { get; }

    /// <summary>The settings.</summary>
    public KvTierManagerOptions Options { get; }

    /// <summary>One namespace of the stack, as the blob store a <see cref="ContainerKvStore"/> encodes into.</summary>
    public IKvBlobStore For(KvNamespace ns) => new NamespacedBlobStore(this, ns);

    /// <inheritdoc />
    public async ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var started = _time.GetTimestamp();
        if (Memory.TryGet(key, out var held))
        {
            Options.CostModel?.ObserveTransfer(Memory.Name, held.Length, _time.GetElapsedTime(started));
            Interlocked.Increment(ref _hits);
            Interlocked.Increment(ref _memoryHits);
            return held;
        }

        for (var i = 0; i < _lanes.Length; i++)
        {
            var lane = _lanes[i];
            if (await ReadLaneAsync(lane, key, cancellationToken).ConfigureAwait(false) is { } blob)
            {
                lane.CountHit();
                Interlocked.Increment(ref _hits);
                Promote(key, blob, i);
                return blob;
            }
        }

        Interlocked.Increment(ref _misses);
        return null;
    }

    /// <inheritdoc />
    /// <remarks>Waits while a lower tier's queue is full (back-pressure); never fails because a lower tier is down.</remarks>
    public async ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        // One copy, shared read-only by memory and every queued write.
        var bytes = blob.ToArray();
        Memory.TryPut(key, bytes);
        var sequence = Interlocked.Increment(ref _sequence);
        foreach (var lane in _lanes)
        {
            await lane.EnqueueAsync(key, bytes, sequence, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Removes from memory at once and queues the remove for every lower tier (behind any queued write of the key, so
    /// the write cannot bring it back); until it is applied, reads no longer see the tier's copy. True when memory or
    /// a tier that answers held the entry.
    /// </remarks>
    public async ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var found = await Memory.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        foreach (var lane in _lanes)
        {
            if (!found && lane.IsUp && !lane.HasPendingRemove(key))
            {
                try
                {
                    found = await lane.RunAsync((t, ct) => t.ContainsAsync(key, ct), cancellationToken).ConfigureAwait(false);
                }
                catch (KvTierUnavailableException)
                {
                    // Down now: the remove below is remembered for its catch-up.
                }
            }
        }

        var sequence = Interlocked.Increment(ref _sequence);
        foreach (var lane in _lanes)
        {
            await lane.EnqueueAsync(key, null, sequence, cancellationToken).ConfigureAwait(false);
        }

        return found;
    }

    /// <inheritdoc />
    public async ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (await Memory.ContainsAsync(key, cancellationToken).ConfigureAwait(false))
        {
            return true;
        }

        foreach (var lane in _lanes)
        {
            if (lane.QueuedBlob(key) is not null)
            {
                return true;
            }

            if (!lane.IsUp || lane.HasPendingRemove(key))
            {
                continue;
            }

            try
            {
                if (await lane.RunAsync((t, ct) => t.ContainsAsync(key, ct), cancellationToken).ConfigureAwait(false))
                {
                    return true;
                }
            }
            catch (KvTierUnavailableException)
            {
            }
        }

        return false;
    }

    /// <inheritdoc />
    /// <remarks>The union of memory and every tier that is up; a tier that fails during the listing is skipped.</remarks>
    public async IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var seen = new HashSet<TierKey>();
        await foreach (var key in Memory.ListAsync(ns, cancellationToken).ConfigureAwait(false))
        {
            if (seen.Add(key))
            {
                yield return key;
            }
        }

        foreach (var lane in _lanes)
        {
            if (!lane.IsUp)
            {
                continue;
            }

            // No operation timeout: a listing takes as long as the tier is large. A failure marks the tier down.
            var keys = new List<TierKey>();
            try
            {
                await foreach (var k in lane.Tier.ListAsync(ns, cancellationToken).ConfigureAwait(false))
                {
                    keys.Add(k);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                lane.MarkDown(e);
                continue;
            }

            foreach (var key in keys)
            {
                if (!lane.HasPendingRemove(key) && seen.Add(key))
                {
                    yield return key;
                }
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>The manager's own hits and misses, with the memory tier's holdings (see <see cref="GetStatistics"/> for every tier).</remarks>
    public ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default)
    {
        var memory = Memory.Statistics();
        return ValueTask.FromResult(memory with
        {
            Tier = Name,
            Hits = Interlocked.Read(ref _hits),
            Misses = Interlocked.Read(ref _misses),
        });
    }

    /// <summary>The manager's counts and every lower tier's health.</summary>
    public KvTierManagerStatistics GetStatistics()
    {
        var tiers = new KvTierHealth[_lanes.Length];
        for (var i = 0; i < tiers.Length; i++)
        {
            tiers[i] = _lanes[i].Health();
        }

        return new KvTierManagerStatistics
        {
            Hits = Interlocked.Read(ref _hits),
            Misses = Interlocked.Read(ref _misses),
            MemoryHits = Interlocked.Read(ref _memoryHits),
            CorruptRemoved = Interlocked.Read(ref _corruptRemoved),
            Promotions = Interlocked.Read(ref _promotions),
            Tiers = tiers,
        };
    }

    /// <inheritdoc />
    public ValueTask ProbeAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Waits until every write queued so far has reached its tier (or been remembered for a tier that is down), and
    /// every tier that is up has finished catching up.
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var idle = true;
            foreach (var lane in _lanes)
            {
                if (lane.QueuedCount > 0 || lane.IsCatchingUp || (lane.IsUp && lane.CatchUpPending > 0))
                {
                    idle = false;
                    break;
                }
            }

            if (idle)
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits (up to <see cref="KvTierManagerOptions.DrainTimeout"/>) for queued writes, then stops and, when it owns them, disposes the tiers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var lane in _lanes)
        {
            lane.Complete();
        }

        try
        {
            await Task.WhenAll(_consumers).WaitAsync(Options.DrainTimeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Stopped with writes still queued after {Timeout}: {Queued} entries did not reach their lower tiers",
                Options.DrainTimeout, _lanes.Sum(l => l.QueuedCount));
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll([_prober, .. _consumers]).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
        if (Options.OwnsTiers)
        {
            foreach (var tier in LowerTiers)
            {
                await tier.DisposeAsync().ConfigureAwait(false);
            }

            await Memory.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads one lane: null for absent, skipped (down, or a remove pending), failed, or corrupt (then deleted there).</summary>
    private async ValueTask<byte[]?> ReadLaneAsync(TierLane lane, TierKey key, CancellationToken cancellationToken)
    {
        if (lane.QueuedBlob(key) is { } queued)
        {
            return queued;
        }

        if (!lane.IsUp)
        {
            lane.CountSkippedRead();
            return null;
        }

        if (lane.HasPendingRemove(key))
        {
            return null;
        }

        ReadOnlyMemory<byte>? got;
        try
        {
            var started = _time.GetTimestamp();
            got = await lane.RunAsync((t, ct) => t.GetAsync(key, ct), cancellationToken).ConfigureAwait(false);
            if (Options.CostModel is { } costs)
            {
                costs.ObserveTransfer(lane.Tier.Name, got?.Length ?? 0, lane.ReadTime(started, _time.GetTimestamp(), _time.TimestampFrequency));
            }
        }
        catch (KvTierUnavailableException)
        {
            return null;
        }
        catch (KvBlobException e)
        {
            await RemoveCorruptAsync(lane, key, e.Message, cancellationToken).ConfigureAwait(false);
            return null;
        }

        if (got is not { } memory)
        {
            return null;
        }

        if (Options.VerifyReads && Check(memory.Span) is { } problem)
        {
            await RemoveCorruptAsync(lane, key, problem, cancellationToken).ConfigureAwait(false);
            return null;
        }

        // Tiers hand out blobs the caller owns: keep the array when the blob is all of one.
        return MemoryMarshal.TryGetArray(memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : memory.ToArray();
    }

    /// <summary>Why a blob cannot be used, or null when its structure and checksums hold (or it needs a codec or profile this process lacks, which the decoder judges).</summary>
    private string? Check(ReadOnlySpan<byte> blob)
    {
        try
        {
            KvContainerReader.Verify(blob, _verifyOptions);
            return null;
        }
        catch (KvContainerException e) when (e.Error is KvContainerError.MissingProfile or KvContainerError.UnknownCodec or KvContainerError.UnsupportedVersion)
        {
            return null;
        }
        catch (KvContainerException e)
        {
            return e.Message;
        }
    }

    private async ValueTask RemoveCorruptAsync(TierLane lane, TierKey key, string reason, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _corruptRemoved);
        _logger.LogWarning("Tier {Tier} held a corrupt blob for {Key}; removing it and reading on: {Reason}", lane.Tier.Name, key, reason);
        try
        {
            await lane.RunAsync((t, ct) => t.RemoveAsync(key, ct), cancellationToken).ConfigureAwait(false);
        }
        catch (KvTierUnavailableException)
        {
            // Down now; remember the remove for its catch-up.
            await lane.EnqueueAsync(key, null, Interlocked.Increment(ref _sequence), cancellationToken).ConfigureAwait(false);
        }
    }

    private void Promote(TierKey key, byte[] blob, int foundAt)
    {
        if (Memory.TryPut(key, blob))
        {
            Interlocked.Increment(ref _promotions);
        }

        if (!Options.PromoteToUpperTiers)
        {
            return;
        }

        for (var j = 0; j < foundAt; j++)
        {
            if (_lanes[j].TryEnqueuePromotion(key, blob, Interlocked.Increment(ref _sequence)))
            {
                Interlocked.Increment(ref _promotions);
            }
        }
    }

    private async Task ConsumeAsync(TierLane lane)
    {
        try
        {
            await foreach (var job in lane.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                await lane.ApplyAsync(job, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private async Task ProbeLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Options.ProbeInterval, _time, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            foreach (var lane in _lanes)
            {
                if (lane.IsUp)
                {
                    // Writes that failed during a short outage the probe did not see are parked too.
                    if (lane.CatchUpPending > 0)
                    {
                        await CatchUpAsync(lane, token).ConfigureAwait(false);
                    }

                    continue;
                }

                try
                {
                    await lane.RunAsync(async (t, ct) =>
                    {
                        await t.ProbeAsync(ct).ConfigureAwait(false);
                        return true;
                    }, token).ConfigureAwait(false);
                }
                catch (KvTierUnavailableException)
                {
                    continue;
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                lane.MarkUp();
                await CatchUpAsync(lane, token).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Queues, for a tier that is back, every remembered put (reread from memory or another tier) and remove.</summary>
    private async Task CatchUpAsync(TierLane lane, CancellationToken cancellationToken)
    {
        // Marked before the keys are taken, so FlushAsync never sees them neither pending nor queued.
        lane.BeginCatchUp();
        try
        {
            await CatchUpTakenAsync(lane, lane.TakeCatchUp(), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lane.EndCatchUp();
        }
    }

    private async Task CatchUpTakenAsync(TierLane lane, List<(TierKey Key, bool IsRemove)> pending, CancellationToken cancellationToken)
    {
        var lost = 0L;
        foreach (var (key, isRemove) in pending)
        {
            try
            {
                // The sequence is taken before the bytes are read, so a newer put queued meanwhile wins (see TierLane).
                var sequence = Interlocked.Increment(ref _sequence);
                if (isRemove)
                {
                    await lane.EnqueueCatchUpAsync(key, null, sequence, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (lane.HasQueued(key))
                {
                    continue;
                }

                var blob = await FindForCatchUpAsync(lane, key, cancellationToken).ConfigureAwait(false);
                if (blob is null)
                {
                    lost++;
                    continue;
                }

                await lane.EnqueueCatchUpAsync(key, blob, sequence, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (lost > 0)
        {
            lane.CountLost(lost);
            _logger.LogWarning("Tier {Tier} will lack {Count} entries written while it was down: no tier held them any more", lane.Tier.Name, lost);
        }
    }

    private async ValueTask<byte[]?> FindForCatchUpAsync(TierLane target, TierKey key, CancellationToken cancellationToken)
    {
        if (Memory.TryPeek(key, out var held) && MemoryMarshal.TryGetArray(held, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length)
        {
            return segment.Array;
        }

        foreach (var lane in _lanes)
        {
            if (lane != target && await ReadLaneAsync(lane, key, cancellationToken).ConfigureAwait(false) is { } blob)
            {
                return blob;
            }
        }

        return null;
    }

    private static List<KvLowerTier> ToLowerTiers(IReadOnlyList<IKvTier> tiers)
    {
        ArgumentNullException.ThrowIfNull(tiers);
        var list = new List<KvLowerTier>(tiers.Count);
        foreach (var tier in tiers)
        {
            list.Add(new KvLowerTier(tier));
        }

        return list;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
