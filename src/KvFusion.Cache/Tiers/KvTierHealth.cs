namespace KvFusion.Cache.Tiers;

/// <summary>Whether the manager uses a lower tier now.</summary>
public enum KvTierState
{
    /// <summary>Answering: reads and writes go to it.</summary>
    Up,

    /// <summary>Failed or timed out: skipped, probed every <see cref="KvTierManagerOptions.ProbeInterval"/>, caught up when back.</summary>
    Down,
}

/// <summary>One lower tier as the manager sees it.</summary>
public sealed record KvTierHealth
{
    /// <summary>The tier's name.</summary>
    public required string Tier { get; init; }

    /// <summary>Up or down.</summary>
    public required KvTierState State { get; init; }

    /// <summary>Why it was last marked down; null when it never was.</summary>
    public string? LastError { get; init; }

    /// <summary>Times it was marked down.</summary>
    public long Outages { get; init; }

    /// <summary>Writes queued for it now.</summary>
    public int QueuedWrites { get; init; }

    /// <summary>Bytes queued for it now.</summary>
    public long QueuedBytes { get; init; }

    /// <summary>Keys written or removed while it was down that it has not caught up with yet.</summary>
    public int CatchUpPending { get; init; }

    /// <summary>Keys it will not catch up with (forgotten past <see cref="KvTierManagerOptions.MaxCatchUpEntries"/>, or no longer held anywhere).</summary>
    public long CatchUpLost { get; init; }

    /// <summary>Writes that reached it.</summary>
    public long WritesDone { get; init; }

    /// <summary>Operations that failed or timed out.</summary>
    public long Failures { get; init; }

    /// <summary>Reads that skipped it because it was down.</summary>
    public long SkippedReads { get; init; }

    /// <summary>Reads it answered with a blob.</summary>
    public long Hits { get; init; }
}

/// <summary>The manager's own counts, with every tier's health.</summary>
public sealed record KvTierManagerStatistics
{
    /// <summary>Gets answered by some tier.</summary>
    public long Hits { get; init; }

    /// <summary>Gets no tier could answer.</summary>
    public long Misses { get; init; }

    /// <summary>Hits answered by host memory.</summary>
    public long MemoryHits { get; init; }

    /// <summary>Entries found corrupt (checksum or format) in a tier and removed from it.</summary>
    public long CorruptRemoved { get; init; }

    /// <summary>Hits copied into the tiers above the one that answered.</summary>
    public long Promotions { get; init; }

    /// <summary>Every lower tier, in read order.</summary>
    public required IReadOnlyList<KvTierHealth> Tiers { get; init; }
}
