namespace KvFusion.Cache.Fusion;

/// <summary>Which fresh-vs-stored difference the check layer measures.</summary>
public enum DeviationTarget
{
    /// <summary>K (after RoPE) only.</summary>
    Key,

    /// <summary>V only (the CacheBlend reference).</summary>
    Value,

    /// <summary>K and V summed.</summary>
    KeyAndValue,
}

/// <summary>How a chunk token's score is formed at a check layer.</summary>
public enum SelectionCriterion
{
    /// <summary>K/V deviation from the stored cache (CacheBlend).</summary>
    Deviation,

    /// <summary>Attention that the query rows pay to the token.</summary>
    QueryAttention,

    /// <summary>Deviation weighted by the query's attention.</summary>
    DeviationTimesAttention,
}

/// <summary>One selection step of blend: at <paramref name="Layer"/>, keep the top <paramref name="Ratio"/> of chunk tokens.</summary>
/// <param name="Layer">The check layer. Layer 0 is allowed for query attention only: the stored layer-0 K/V are exact,
/// so the query's attention there is what full prefill computes, while they never deviate.</param>
/// <param name="Ratio">Fraction of all chunk tokens kept after this step.</param>
/// <param name="Criterion">This step's criterion (null: <see cref="BlendOptions.Criterion"/>).</param>
public readonly record struct SelectionStep(int Layer, double Ratio, SelectionCriterion? Criterion = null);

/// <summary>CacheBlend settings. Every improvement over the reference is a switch, so the harness can compare.</summary>
public sealed record BlendOptions
{
    /// <summary>The paper's recompute ratio.</summary>
    public const double DefaultRatio = 0.15;

    /// <summary>Fraction of chunk tokens recomputed after the (last) check layer, in (0, 1].</summary>
    public double Ratio { get; init; } = DefaultRatio;

    /// <summary>The check layer of single-step selection.</summary>
    public int CheckLayer { get; init; } = 1;

    /// <summary>What the deviation measures.</summary>
    public DeviationTarget Deviation { get; init; } = DeviationTarget.KeyAndValue;

    /// <summary>How tokens are scored.</summary>
    public SelectionCriterion Criterion { get; init; } = SelectionCriterion.QueryAttention;

    /// <summary>
    /// Take layer 0's K/V of chunk tokens from the store instead of recomputing them: they depend only on the token,
    /// so they are exact (to fp16). The reference recomputes them.
    /// </summary>
    public bool ReuseLayerZero { get; init; } = true;

    /// <summary>
    /// At a check layer, write the fresh K/V of every token (they are computed anyway), not only of the selected
    /// ones. The reference keeps the stored K/V of unselected tokens at the check layer.
    /// </summary>
    public bool WriteAllAtCheckLayer { get; init; } = true;

    /// <summary>
    /// Chunk tokens start at the first check layer from their stored E-cache (the hidden state entering that layer,
    /// kept at precompute: <see cref="FusionEngineOptions.HiddenStateLayers"/>) instead of being recomputed through
    /// the layers below it, whose stored K/V are kept; only the query (and an uncached prefix) runs those layers. A
    /// chunk stored without that layer's E-cache is refused (<see cref="FusionError.MissingHiddenState"/>).
    /// </summary>
    public bool StartFromHiddenStates { get; init; }

    /// <summary>
    /// Gradual filtering: several check layers with decreasing ratios (the last ratio is the final one). Null: one
    /// step at <see cref="CheckLayer"/> with <see cref="Ratio"/>.
    /// </summary>
    public IReadOnlyList<SelectionStep>? Schedule { get; init; }

    /// <summary>The CacheBlend reference behaviour: V deviation at layer 1, layers 0 and 1 recomputed for all tokens.</summary>
    public static BlendOptions Reference(double ratio) => new()
    {
        Ratio = ratio,
        CheckLayer = 1,
        Deviation = DeviationTarget.Value,
        Criterion = SelectionCriterion.Deviation,
        ReuseLayerZero = false,
        WriteAllAtCheckLayer = true,
    };

    /// <summary>The selection steps in layer order.</summary>
    public IReadOnlyList<SelectionStep> Steps() => Schedule is { Count: > 0 } s ? s : [new SelectionStep(CheckLayer, Ratio)];

    /// <summary>Throws when the options cannot be used with a model of <paramref name="layerCount"/> layers.</summary>
    public void Validate(int layerCount)
    {
        var steps = Steps();
        var previousLayer = -1;
        var previousRatio = 1.0;
        foreach (var step in steps)
        {
            if (step.Layer <= previousLayer || step.Layer >= layerCount)
            {
                throw new InvalidOperationException($"Check layers must increase and be below {layerCount}; got {step.Layer}.");
            }

            if (StartFromHiddenStates && previousLayer < 0 && step.Layer == 0)
            {
                throw new InvalidOperationException("Starting from the E-cache needs a first check layer above 0: layer 0 starts from the embedding anyway.");
            }

            if (step.Layer == 0 && (step.Criterion ?? Criterion) != SelectionCriterion.QueryAttention)
            {
                throw new InvalidOperationException("Layer 0 can only select by query attention: stored layer-0 K/V are exact and never deviate.");
            }

            if (!(step.Ratio > 0 && step.Ratio <= previousRatio))
            {
                throw new InvalidOperationException($"Ratios must be in (0, 1] and not increase; got {step.Ratio}.");
            }

            previousLayer = step.Layer;
            previousRatio = step.Ratio;
        }
    }
}
