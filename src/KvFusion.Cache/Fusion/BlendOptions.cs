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
    /// the layers below it, whose stored K/V are kept; only the query (and an uncached prefix) runs those layers. When a
    /// chunk was stored without that layer's E-cache, or the first check keeps every token, the layers below are
    /// recomputed as without the switch (<see cref="FusionReport.StartedFromHiddenStates"/> says which ran).
    /// </summary>
    public bool StartFromHiddenStates { get; init; }

    /// <summary>
    /// Position-aware recompute: each chunk's first this many tokens are kept at every check layer whatever their
    /// score, inside the step's budget (so compute is unchanged). Computed alone, a chunk's first tokens carry the
    /// most distorted K/V (EPIC). 0: selection alone decides.
    /// </summary>
    public int ChunkHeadTokens { get; init; }

    /// <summary>
    /// The quality gate's floor: the largest estimated KL(full ‖ fused) of the next-token distribution (nats) a blend
    /// may carry (<see cref="QualityCalibration"/>). Above it the prompt is fused once more at the ratio the signal says
    /// the floor needs (at most <see cref="GateMaxRatio"/>, recomputing the layers below the first check layer too), and
    /// prefilled in full when that ratio is above the limit or the second attempt misses too. Null: the estimate is
    /// reported and nothing is gated.
    /// </summary>
    public double? QualityFloor { get; init; }

    /// <summary>The largest final ratio the gate may raise to before falling back to full, in (0, 1].</summary>
    public double GateMaxRatio { get; init; } = 0.6;

    /// <summary>
    /// Gradual filtering: several check layers with decreasing ratios (the last ratio is the final one). Null: one
    /// step at <see cref="CheckLayer"/> with <see cref="Ratio"/>.
    /// </summary>
    public IReadOnlyList<SelectionStep>? Schedule { get; init; }

    /// <summary>The default blend (<see cref="BlendVariants.Default"/>) at <paramref name="ratio"/>.</summary>
    public static BlendOptions Default(double ratio = DefaultRatio) => BlendVariants.Build(BlendVariants.Default, ratio);

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

    /// <summary>
    /// These options with every step's ratio scaled so the last one is <paramref name="finalRatio"/> (each capped at
    /// 1): the same selection schedule recomputing more, as the quality gate raises it.
    /// </summary>
    public BlendOptions WithFinalRatio(double finalRatio)
    {
        var steps = Steps();
        var factor = finalRatio / steps[^1].Ratio;
        if (factor == 1)
        {
            return this;
        }

        return this with
        {
            Ratio = Math.Min(1, Ratio * factor),
            Schedule = Schedule is { Count: > 0 } schedule ? [.. schedule.Select(s => s with { Ratio = Math.Min(1, s.Ratio * factor) })] : null,
        };
    }

    /// <summary>
    /// These options for a model of <paramref name="layerCount"/> layers: check layers the model does not have are
    /// dropped and the last one it has takes the final ratio, so a schedule (the default's layers 1 and 2) still runs
    /// on a shallow model. Unchanged when every check layer exists, or when none does (<see cref="Validate"/> says so).
    /// </summary>
    public BlendOptions FitTo(int layerCount)
    {
        var steps = Steps();
        if (steps[^1].Layer < layerCount || steps[0].Layer >= layerCount)
        {
            return this;
        }

        var kept = steps.Where(s => s.Layer < layerCount).ToList();
        kept[^1] = kept[^1] with { Ratio = steps[^1].Ratio };
        return this with { Schedule = kept, Ratio = steps[^1].Ratio };
    }

    /// <summary>Throws when the options cannot be used with a model of <paramref name="layerCount"/> layers.</summary>
    public void Validate(int layerCount)
    {
        if (ChunkHeadTokens < 0)
        {
            throw new InvalidOperationException($"ChunkHeadTokens must be at least 0; got {ChunkHeadTokens}.");
        }

        if (QualityFloor is { } floor && !(floor >= 0 && double.IsFinite(floor)))
        {
            throw new InvalidOperationException($"The quality floor is an estimated KL: at least 0 and finite; got {floor}.");
        }

        if (!(GateMaxRatio > 0 && GateMaxRatio <= 1))
        {
            throw new InvalidOperationException($"GateMaxRatio must be in (0, 1]; got {GateMaxRatio}.");
        }

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
