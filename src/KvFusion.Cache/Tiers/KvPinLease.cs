namespace KvFusion.Cache.Tiers;

/// <summary>
/// Keeps one host-memory entry from being evicted or expiring while a caller uses it. Dispose it when done; a lease
/// that is never disposed ends by itself at <see cref="ExpiresAt"/>, so a forgotten lease cannot hold memory forever.
/// </summary>
public sealed class KvPinLease : IDisposable
{
    private readonly HostMemoryTier _tier;
    private int _released;

    internal KvPinLease(HostMemoryTier tier, TierKey key, ReadOnlyMemory<byte> blob, DateTimeOffset expiresAt)
    {
        _tier = tier;
        Key = key;
        Blob = blob;
        ExpiresAt = expiresAt;
    }

    /// <summary>The pinned entry's key.</summary>
    public TierKey Key { get; }

    /// <summary>The pinned blob (never changed; valid after the lease ends too, as any blob handed out is).</summary>
    public ReadOnlyMemory<byte> Blob { get; }

    /// <summary>When the lease ends if it is not disposed first.</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>Whether the lease has been disposed.</summary>
    public bool IsReleased => Volatile.Read(ref _released) != 0;

    /// <summary>Ends the lease (idempotent).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _tier.Release(this);
        }
    }
}
