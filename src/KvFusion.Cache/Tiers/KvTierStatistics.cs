namespace KvFusion.Cache.Tiers;

/// <summary>What a tier holds and has done since it was opened.</summary>
public sealed record KvTierStatistics
{
    /// <summary>The tier's name.</summary>
    public required string Tier { get; init; }

    /// <summary>Entries held (an estimate where the tier only estimates, e.g. RocksDB's key count).</summary>
    public long Entries { get; init; }

    /// <summary>Bytes of blobs held.</summary>
    public long Bytes { get; init; }

    /// <summary>The tier's byte budget; 0 when it has none.</summary>
    public long ByteBudget { get; init; }

    /// <summary>Gets that found a blob.</summary>
    public long Hits { get; init; }

    /// <summary>Gets that found none.</summary>
    public long Misses { get; init; }

    /// <summary>Blobs stored.</summary>
    public long Puts { get; init; }

    /// <summary>Entries removed to keep within the budget.</summary>
    public long Evictions { get; init; }

    /// <summary>Entries dropped because their time to live ran out.</summary>
    public long Expirations { get; init; }

    /// <summary>Puts refused because the entry could not fit (larger than the budget, or the budget is pinned full).</summary>
    public long Rejections { get; init; }
}
