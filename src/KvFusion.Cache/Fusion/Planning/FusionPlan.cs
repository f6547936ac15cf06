using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>A validated fusion request: the tokens of each segment and where they sit in the fused prompt.</summary>
internal sealed class FusionPlan
{
    /// <summary>The mode as reported (e.g. <c>blend:0.15</c>).</summary>
    public required string ModeName { get; init; }

    public required int[] Prefix { get; init; }

    public required IReadOnlyList<ChunkPlan> Chunks { get; init; }

    public required int[] Query { get; init; }

    /// <summary>The tokens chunks are precomputed behind.</summary>
    public required int[] Sink { get; init; }

    /// <summary>The fused prompt: prefix, chunks, query.</summary>
    public required int[] Tokens { get; init; }

    /// <summary>Share mode: the sender the chunk entries came from and the layers to recompute; null in other modes.</summary>
    public SharedCacheSource? SharedFrom { get; init; }

    public int ChunkTokens => Chunks.Sum(c => c.Tokens.Length);

    /// <summary>The request's loading goal: chunks sent as text are read at the level (or computed from the text) the controller picks.</summary>
    public Loading.LoadGoal? Loading { get; init; }

    /// <summary>The share of chunk tokens the mode recomputes after its first check layer (blend's ratio; 0 otherwise).</summary>
    public double RecomputeRatio { get; init; }

    /// <summary>What the controller chose while the chunks were loaded (set by <c>ChunkCaches</c>).</summary>
    public Loading.LoadReport? LoadReport { get; set; }

    /// <summary>The report every mode starts from; the engine adds the times.</summary>
    public FusionReport Report(int reused, int[] recomputedPerLayer) => new()
    {
        Mode = ModeName,
        TotalTokens = Tokens.Length,
        PrefixTokens = Prefix.Length,
        ChunkTokens = ChunkTokens,
        QueryTokens = Query.Length,
        ReusedTokens = reused,
        RecomputedPerLayer = recomputedPerLayer,
        Loading = LoadReport,
        StageTimes = new Dictionary<string, TimeSpan>(),
        Total = TimeSpan.Zero,
    };
}
