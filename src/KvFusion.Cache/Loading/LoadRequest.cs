namespace KvFusion.Cache.Loading;

/// <summary>
/// What a request asks of loading: a TTFT deadline, a quality budget (largest mean KL), both, or neither; and how much
/// TTFT above the fastest plan that meets them may be spent on quality (<see cref="TtftSlack"/>, a fraction).
/// </summary>
public sealed record LoadGoal(TimeSpan? Deadline = null, double? MaxMeanKl = null, double TtftSlack = LoadGoal.DefaultTtftSlack)
{
    /// <summary>The default slack: quality is bought with up to 10% more TTFT than the fastest plan.</summary>
    public const double DefaultTtftSlack = 0.1;

    /// <summary>No deadline and no budget: the best quality within <see cref="TtftSlack"/> of the fastest plan.</summary>
    public static LoadGoal Fastest { get; } = new();
}

/// <summary>How the reads of a plan overlap its compute.</summary>
public enum LoadOverlap
{
    /// <summary>Reads, then compute.</summary>
    None,

    /// <summary>Reads run beside the chunks computed from text; decodes (on the same cores), blend's recompute and the query follow.</summary>
    Chunks,

    /// <summary>Layer i's reads run beside layer i-1's compute (layer-pipelined fusion).</summary>
    Layers,
}

/// <summary>The prompt the <see cref="LoadController"/> plans: its chunks, the model's depth, the ratios blend may use, and the goal.</summary>
public sealed record LoadRequest
{
    /// <summary>The chunks, in prompt order, each with its options.</summary>
    public required IReadOnlyList<LoadChunk> Chunks { get; init; }

    /// <summary>The model's layers (text and query tokens are computed through all of them).</summary>
    public required int Layers { get; init; }

    /// <summary>The fp16 size of one token's K and V over all layers (2 × layers × KV heads × head dim × 2 bytes).</summary>
    public required long Fp16BytesPerToken { get; init; }

    /// <summary>The layers blend recomputes its selected tokens in (those after its first check layer).</summary>
    public required int RecomputeLayers { get; init; }

    /// <summary>Tokens computed whatever the plan (the query, and a prefix that is not stored).</summary>
    public int QueryTokens { get; init; }

    /// <summary>The blend ratios allowed (none below the quality floor); at least one. Ratio 0 is plain reuse.</summary>
    public required IReadOnlyList<LoadRatio> Ratios { get; init; }

    /// <summary>What to optimise.</summary>
    public LoadGoal Goal { get; init; } = LoadGoal.Fastest;

    /// <summary>How reading overlaps computing in the fusion that will run the plan.</summary>
    public LoadOverlap Overlap { get; init; } = LoadOverlap.Chunks;
}

/// <summary>The option picked for one chunk and what it is predicted to cost.</summary>
public sealed record LoadChoice(int OptionIndex, LoadOption Option, double TransferSeconds, double ComputeSeconds);

/// <summary>The controller's plan for a request.</summary>
public sealed record LoadPlan
{
    /// <summary>The blend ratio used for the stored chunks.</summary>
    public required LoadRatio Ratio { get; init; }

    /// <summary>One choice per chunk, in prompt order.</summary>
    public required IReadOnlyList<LoadChoice> Choices { get; init; }

    /// <summary>Predicted time to first token.</summary>
    public required TimeSpan PredictedTtft { get; init; }

    /// <summary>Predicted mean KL(full ‖ fused) per chunk token.</summary>
    public required double PredictedMeanKl { get; init; }

    /// <summary>Whether the plan meets the goal's deadline and budget (false: the best the options allow).</summary>
    public required bool MeetsGoal { get; init; }
}
