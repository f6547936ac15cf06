namespace KvFusion.Client.Contracts;

/// <summary>Answer of <c>/readyz</c>: whether the model is loaded and the storage tiers are up.</summary>
public sealed record ReadinessReport
{
    /// <summary><c>ready</c> or <c>not ready</c>.</summary>
    public required string Status { get; init; }

    /// <summary>The model id, once loaded.</summary>
    public string? Model { get; init; }

    /// <summary>Each storage tier and whether it answers.</summary>
    public IReadOnlyList<TierStatus> Tiers { get; init; } = [];
}

/// <summary>One storage tier in <see cref="ReadinessReport"/>.</summary>
public sealed record TierStatus
{
    /// <summary>The tier's name (memory, rocksdb, redis).</summary>
    public required string Name { get; init; }

    /// <summary>Whether the tier answers.</summary>
    public required bool Up { get; init; }

    /// <summary>Writes waiting to reach the tier.</summary>
    public long PendingWrites { get; init; }
}
