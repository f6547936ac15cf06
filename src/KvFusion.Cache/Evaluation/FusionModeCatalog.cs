using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Evaluation;

/// <summary>
/// Named fusion configurations for the harness: <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>blend:R</c> (the
/// default blend) and <c>blend:R:VARIANT</c>, where the variant switches between the reference behaviour and each
/// improvement so they can be compared.
/// </summary>
public static class FusionModeCatalog
{
    /// <summary>Blend variants by name.</summary>
    public static IReadOnlyDictionary<string, string> Variants { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ref"] = "CacheBlend reference: V deviation at layer 1, layers 0-1 recomputed for all tokens",
        ["dev"] = "K+V deviation at layer 1, stored layer-0 K/V, fresh K/V of all tokens written at the check layer",
        ["qattn"] = "query attention at layer 1 (the default)",
        ["devxattn"] = "K+V deviation times query attention at layer 1",
        ["gradual"] = "gradual filtering by query attention: layer 1 keeps 2r, layer 2 keeps r",
        ["gradualdev"] = "gradual filtering by K+V deviation: layer 1 keeps 2r, layer 2 keeps r",
        ["l0"] = "query attention at layer 0 (exact stored K/V there), so layer 0 is computed only for selected tokens",
        ["l0gradual"] = "query attention at layer 0 keeps 2r, query attention at layer 1 keeps r",
        ["l0gradualdev"] = "query attention at layer 0 keeps 2r, K+V deviation at layer 1 keeps r",
        ["exact"] = "everything recomputed from layer 0 (ratio 1 equals full)",
    };

    /// <summary>Turns a mode spec into a request mode and blend options.</summary>
    /// <exception cref="FormatException">Unknown variant.</exception>
    public static (FusionMode Mode, BlendOptions Blend) Resolve(FusionModeSpec spec)
    {
        if (spec.Mode != FusionMode.Blend)
        {
            return (spec.Mode, new BlendOptions());
        }

        var r = spec.Ratio;
        var blend = spec.Variant switch
        {
            null or "qattn" => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention },
            "ref" => BlendOptions.Reference(r),
            "dev" => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.Deviation, Deviation = DeviationTarget.KeyAndValue },
            "devxattn" => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.DeviationTimesAttention },
            "gradual" => new BlendOptions
            {
                Ratio = r,
                Criterion = SelectionCriterion.QueryAttention,
                Schedule = [new SelectionStep(1, Math.Min(1, 2 * r)), new SelectionStep(2, r)],
            },
            "gradualdev" => new BlendOptions
            {
                Ratio = r,
                Criterion = SelectionCriterion.Deviation,
                Schedule = [new SelectionStep(1, Math.Min(1, 2 * r)), new SelectionStep(2, r)],
            },
            "l0" => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, Schedule = [new SelectionStep(0, r)] },
            "l0gradual" => new BlendOptions
            {
                Ratio = r,
                Criterion = SelectionCriterion.QueryAttention,
                Schedule = [new SelectionStep(0, Math.Min(1, 2 * r)), new SelectionStep(1, r)],
            },
            "l0gradualdev" => new BlendOptions
            {
                Ratio = r,
                Criterion = SelectionCriterion.QueryAttention,
                Schedule = [new SelectionStep(0, Math.Min(1, 2 * r)), new SelectionStep(1, r, SelectionCriterion.DeviationTimesAttention)],
            },
            "exact" => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.Deviation, ReuseLayerZero = false },
            _ => throw new FormatException($"Unknown blend variant '{spec.Variant}' ({string.Join(", ", Variants.Keys)})."),
        };
        return (FusionMode.Blend, blend);
    }
}
