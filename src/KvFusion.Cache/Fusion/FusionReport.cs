namespace KvFusion.Cache.Fusion;

/// <summary>What a fusion did and what it cost.</summary>
public sealed record FusionReport
{
    /// <summary>The mode used.</summary>
    public required string Mode { get; init; }

    /// <summary>Tokens in the fused prompt.</summary>
    public required int TotalTokens { get; init; }

    /// <summary>Prefix tokens.</summary>
    public int PrefixTokens { get; init; }

    /// <summary>Chunk tokens.</summary>
    public int ChunkTokens { get; init; }

    /// <summary>Query tokens.</summary>
    public int QueryTokens { get; init; }

    /// <summary>Tokens whose stored K/V were loaded instead of computed (at layer 0 for blend).</summary>
    public int ReusedTokens { get; init; }

    /// <summary>Tokens computed in each layer (rows that went through attention and MLP).</summary>
    public required IReadOnlyList<int> RecomputedPerLayer { get; init; }

    /// <summary>Chunks that had to be precomputed during this request (store misses).</summary>
    public int ChunksPrecomputed { get; init; }

    /// <summary>Prefix blocks loaded from the store (prefix mode).</summary>
    public int PrefixBlocksReused { get; init; }

    /// <summary>Selected chunk tokens at each check layer (blend), as (layer, count).</summary>
    public IReadOnlyList<(int Layer, int Selected, int Candidates)> Selection { get; init; } = [];

    /// <summary>Cache slots of the chunk tokens kept by the last check layer (blend), ascending.</summary>
    public IReadOnlyList<int> SelectedSlots { get; init; } = [];

    /// <summary>Mean deviation of selected and of unselected tokens at the last check layer (blend).</summary>
    public (double Selected, double Unselected)? DeviationMeans { get; init; }

    /// <summary>Whether blend's chunk tokens started at the first check layer from their stored E-cache.</summary>
    public bool StartedFromHiddenStates { get; init; }

    /// <summary>Blend's quality estimate and gate decision (null for other modes, and for a blend without chunk tokens).</summary>
    public FusionQuality? Quality { get; init; }

    /// <summary>What the loading controller chose per chunk, when the request set a loading goal.</summary>
    public Loading.LoadReport? Loading { get; init; }

    /// <summary>Time per stage (tokenize, precompute, load, compute, select, store).</summary>
    public required IReadOnlyDictionary<string, TimeSpan> StageTimes { get; init; }

    /// <summary>From request to next-token logits.</summary>
    public required TimeSpan Total { get; init; }

    /// <summary>Fraction of (token, layer) pairs computed, relative to full prefill.</summary>
    public double ComputeFraction => TotalTokens == 0 || RecomputedPerLayer.Count == 0
        ? 0
        : RecomputedPerLayer.Sum(x => (double)x) / ((double)TotalTokens * RecomputedPerLayer.Count);
}
