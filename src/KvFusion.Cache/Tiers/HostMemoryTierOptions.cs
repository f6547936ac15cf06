using System.Globalization;

namespace KvFusion.Cache.Tiers;

/// <summary>How the host-memory tier chooses what to evict.</summary>
public enum HostMemoryEvictionPolicy
{
    /// <summary>
    /// Recency weighted by recompute cost per byte (GreedyDual-Size): an entry's priority is the inflation value at its
    /// last use plus its recompute cost per byte held, and the lowest priority goes first. Entries that save more prefill
    /// per byte (compressed, long) outlive cheap ones used as recently; unused entries age out as the inflation rises.
    /// </summary>
    CostAware,

    /// <summary>Plain least recently used (the baseline the cost-aware policy is measured against).</summary>
    Lru,
}

/// <summary>Settings of a <see cref="HostMemoryTier"/>.</summary>
public sealed record HostMemoryTierOptions
{
    /// <summary>Bytes of blobs held at most (default 1 GiB).</summary>
    public long ByteBudget { get; init; } = 1L << 30;

    /// <summary>What is evicted first when a put needs room.</summary>
    public HostMemoryEvictionPolicy EvictionPolicy { get; init; } = HostMemoryEvictionPolicy.CostAware;

    /// <summary>How long an entry lives after it is written; null for no limit.</summary>
    public TimeSpan? TimeToLive { get; init; }

    /// <summary>The longest a pin lease holds an entry; a lease that is never disposed ends by itself then.</summary>
    public TimeSpan MaxPinDuration { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (ByteBudget < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(ByteBudget)} must be at least 1 byte; got {ByteBudget}."));
        }

        if (!Enum.IsDefined(EvictionPolicy))
        {
            throw new ArgumentException($"{nameof(EvictionPolicy)} must be {string.Join(" or ", Enum.GetNames<HostMemoryEvictionPolicy>())}; got {EvictionPolicy}.");
        }

        if (TimeToLive is { } ttl && ttl <= TimeSpan.Zero)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(TimeToLive)} must be positive (or unset for no limit); got {ttl}."));
        }

        if (MaxPinDuration <= TimeSpan.Zero)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxPinDuration)} must be positive; got {MaxPinDuration}."));
        }
    }
}
