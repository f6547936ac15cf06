using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// The host-memory tier: blobs in process memory within a byte budget, evicted by recency weighted by recompute cost
/// per byte (or plain LRU), with a time to live and pin leases. Safe for concurrent readers and writers: one lock
/// guards the index, and every operation under it is O(log n); blobs are copied outside it.
/// </summary>
/// <remarks>
/// A put that cannot fit (larger than the budget, or the rest of the budget pinned) is refused and counted in
/// <see cref="KvTierStatistics.Rejections"/>; it never blocks and never exceeds the budget. Pinned entries are skipped by
/// eviction and by expiry until their leases end.
/// </remarks>
public sealed class HostMemoryTier : IKvTier
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TierKey, Node> _nodes = [];
    private readonly SortedSet<Node> _order = new(NodeOrder.Instance);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _bytes;
    private long _sequence;
    private double _inflation;
    private DateTimeOffset _nextExpiryScan;
    private long _hits;
    private long _misses;
    private long _puts;
    private long _evictions;
    private long _expirations;
    private long _rejections;
    private bool _disposed;

    /// <summary>Creates an empty tier.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public HostMemoryTier(HostMemoryTierOptions? options = null, TimeProvider? timeProvider = null, ILogger<HostMemoryTier>? logger = null)
    {
        Options = options ?? new HostMemoryTierOptions();
        Options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public string Name => "memory";

    /// <summary>The settings.</summary>
    public HostMemoryTierOptions Options { get; }

    /// <summary>Bytes held now.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Entries held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _nodes.Count;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(TryGet(key, out var blob) ? blob : (ReadOnlyMemory<byte>?)null);

    /// <summary>Gets a blob and refreshes its recency; false when absent or expired.</summary>
    public bool TryGet(TierKey key, out ReadOnlyMemory<byte> blob)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (FindLive(key) is { } node)
            {
                Touch(node);
                _hits++;
                blob = node.Blob;
                return true;
            }

            _misses++;
            blob = default;
            return false;
        }
    }

    /// <summary>Gets a blob without counting a hit or refreshing its recency (for the tiers' own copying).</summary>
    public bool TryPeek(TierKey key, out ReadOnlyMemory<byte> blob)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (FindLive(key) is { } node)
            {
                blob = node.Blob;
                return true;
            }

            blob = default;
            return false;
        }
    }

    /// <summary>
    /// Pins an entry for at most <paramref name="duration"/> (capped at <see cref="HostMemoryTierOptions.MaxPinDuration"/>;
    /// the cap when null): it is not evicted or expired until the lease is disposed or runs out. Null when absent.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="duration"/> is not positive.</exception>
    public KvPinLease? Pin(TierKey key, TimeSpan? duration = null)
    {
        var length = duration ?? Options.MaxPinDuration;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(length, TimeSpan.Zero, nameof(duration));
        if (length > Options.MaxPinDuration)
        {
            length = Options.MaxPinDuration;
        }

        lock (_lock)
        {
            ThrowIfDisposed();
            if (FindLive(key) is not { } node)
            {
                _misses++;
                return null;
            }

            Touch(node);
            _hits++;
            var lease = new KvPinLease(this, key, node.Blob, _time.GetUtcNow() + length);
            node.Leases.Add(lease);
            return lease;
        }
    }

    /// <summary>Whether an entry is pinned by a lease that has neither been disposed nor run out.</summary>
    public bool IsPinned(TierKey key)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(key, out var node) && IsPinned(node, _time.GetUtcNow());
        }
    }

    /// <inheritdoc />
    public ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        TryPut(key, blob.ToArray());
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Stores <paramref name="blob"/> without copying it (the caller hands it over and never changes it), evicting
    /// what the policy picks to make room; false when it cannot fit, in which case nothing held changes except that an
    /// older blob under the same key is removed (it would be stale).
    /// </summary>
    public bool TryPut(TierKey key, byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return TryPut(key, blob, KvRecomputeCost.OfBlob(blob));
    }

    /// <summary>
    /// As <see cref="TryPut(TierKey, byte[])"/>, with the entry's recompute cost given (in <see cref="KvRecomputeCost"/>'s
    /// units) instead of read from the container header.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="recomputeCost"/> is negative or not finite.</exception>
    public bool TryPut(TierKey key, byte[] blob, double recomputeCost)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (!double.IsFinite(recomputeCost) || recomputeCost < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(recomputeCost), recomputeCost, "The recompute cost must be a finite number of at least 0.");
        }

        var costPerByte = blob.Length == 0 ? 0 : recomputeCost / blob.Length;
        lock (_lock)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            if (_nodes.TryGetValue(key, out var old))
            {
                // The new blob replaces the old one whatever happens; a pinned old one stays valid for its holders.
                RemoveNode(old);
            }

            if (blob.Length > Options.ByteBudget || !MakeRoom(blob.Length, now))
            {
                _rejections++;
                return false;
            }

            var node = new Node(key, blob, costPerByte, Options.TimeToLive is { } ttl ? now + ttl : DateTimeOffset.MaxValue);
            Prioritize(node);
            _nodes.Add(key, node);
            _order.Add(node);
            _bytes += blob.Length;
            _puts++;
            return true;
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (!_nodes.TryGetValue(key, out var node))
            {
                return ValueTask.FromResult(false);
            }

            RemoveNode(node);
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            return ValueTask.FromResult(FindLive(key) is not null);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        List<TierKey> keys;
        lock (_lock)
        {
            ThrowIfDisposed();
            var now = _time.GetUtcNow();
            keys = new List<TierKey>(_nodes.Count);
            foreach (var node in _nodes.Values)
            {
                if ((ns is null || node.Key.Namespace == ns.Value) && (node.ExpiresAt > now || IsPinned(node, now)))
                {
                    keys.Add(node.Key);
                }
            }
        }

        foreach (var key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return key;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Statistics());

    /// <summary>The counts now.</summary>
    public KvTierStatistics Statistics()
    {
        lock (_lock)
        {
            return new KvTierStatistics
            {
                Tier = Name,
                Entries = _nodes.Count,
                Bytes = _bytes,
                ByteBudget = Options.ByteBudget,
                Hits = _hits,
                Misses = _misses,
                Puts = _puts,
                Evictions = _evictions,
                Expirations = _expirations,
                Rejections = _rejections,
            };
        }
    }

    /// <summary>Drops every expired entry that no lease pins (expired entries are otherwise dropped when met).</summary>
    /// <returns>The entries dropped.</returns>
    public int RemoveExpired()
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            return DropExpired(_time.GetUtcNow());
        }
    }

    /// <inheritdoc />
    public ValueTask ProbeAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposed = true;
            _nodes.Clear();
            _order.Clear();
            _bytes = 0;
        }

        return ValueTask.CompletedTask;
    }

    internal void Release(KvPinLease lease)
    {
        lock (_lock)
        {
            if (_nodes.TryGetValue(lease.Key, out var node))
            {
                node.Leases.Remove(lease);
            }
        }
    }

    private Node? FindLive(TierKey key)
    {
        if (!_nodes.TryGetValue(key, out var node))
        {
            return null;
        }

        var now = _time.GetUtcNow();
        if (node.ExpiresAt > now || IsPinned(node, now))
        {
            return node;
        }

        RemoveNode(node);
        _expirations++;
        return null;
    }

    private bool MakeRoom(long needed, DateTimeOffset now)
    {
        if (_bytes + needed <= Options.ByteBudget)
        {
            return true;
        }

        // Expired entries go before any live one.
        if (RemoveExpiredWhile(now, needed))
        {
            return true;
        }

        // Walk the priority order from the lowest, skipping pinned entries, until the blob fits. The victims are
        // chosen before any is removed, so a put that cannot fit (the rest pinned) evicts nothing.
        var victims = new List<Node>();
        var freed = 0L;
        foreach (var node in _order)
        {
            if (IsPinned(node, now))
            {
                continue;
            }

            victims.Add(node);
            freed += node.Blob.Length;
            if (_bytes - freed + needed <= Options.ByteBudget)
            {
                break;
            }
        }

        if (_bytes - freed + needed > Options.ByteBudget)
        {
            return false;
        }

        foreach (var node in victims)
        {
            // GreedyDual: later entries start from the evicted one's priority, so what is not used again ages out.
            _inflation = Math.Max(_inflation, node.Priority);
            RemoveNode(node);
            _evictions++;
        }

        _logger.LogDebug("Evicted {Count} entries ({Bytes} bytes) to make room for {Needed} bytes", victims.Count, freed, needed);
        return true;
    }

    private bool RemoveExpiredWhile(DateTimeOffset now, long needed)
    {
        // A full scan, so at most once a second: between scans an expired entry is dropped when met or evicted.
        if (Options.TimeToLive is null || now < _nextExpiryScan)
        {
            return false;
        }

        _nextExpiryScan = now + TimeSpan.FromSeconds(1);
        DropExpired(now);
        return _bytes + needed <= Options.ByteBudget;
    }

    /// <summary>Removes every expired entry no lease pins; called under the lock.</summary>
    private int DropExpired(DateTimeOffset now)
    {
        var expired = new List<Node>();
        foreach (var node in _nodes.Values)
        {
            if (node.ExpiresAt <= now && !IsPinned(node, now))
            {
                expired.Add(node);
            }
        }

        foreach (var node in expired)
        {
            RemoveNode(node);
            _expirations++;
        }

        return expired.Count;
    }

    private void Touch(Node node)
    {
        _order.Remove(node);
        Prioritize(node);
        _order.Add(node);
    }

    private void Prioritize(Node node)
    {
        node.Sequence = ++_sequence;
        node.Priority = Options.EvictionPolicy == HostMemoryEvictionPolicy.Lru ? node.Sequence : _inflation + node.CostPerByte;
    }

    private void RemoveNode(Node node)
    {
        _nodes.Remove(node.Key);
        _order.Remove(node);
        _bytes -= node.Blob.Length;
    }

    private static bool IsPinned(Node node, DateTimeOffset now)
    {
        if (node.Leases.Count == 0)
        {
            return false;
        }

        // Leases that ran out are dropped here, so a forgotten lease stops counting once its time is up.
        node.Leases.RemoveAll(l => l.ExpiresAt <= now);
        return node.Leases.Count > 0;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private sealed class Node(TierKey key, byte[] blob, double costPerByte, DateTimeOffset expiresAt)
    {
        public TierKey Key { get; } = key;

        public byte[] Blob { get; } = blob;

        public double CostPerByte { get; } = costPerByte;

        public DateTimeOffset ExpiresAt { get; } = expiresAt;

        public double Priority { get; set; }

        public long Sequence { get; set; }

        public List<KvPinLease> Leases { get; } = [];
    }

    private sealed class NodeOrder : IComparer<Node>
    {
        public static readonly NodeOrder Instance = new();

        public int Compare(Node? x, Node? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            var byPriority = x!.Priority.CompareTo(y!.Priority);
            return byPriority != 0 ? byPriority : x.Sequence.CompareTo(y.Sequence);
        }
    }
}
