using System.Globalization;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// The named blend variants of mode strings (<c>blend:R:VARIANT</c>): the CacheBlend reference and each improvement,
/// so they can be compared. One table builds each variant's options, and a variant's description is composed from the
/// options it builds (each criterion and switch reads as a fixed phrase), so the two cannot drift apart.
/// </summary>
public static class BlendVariants
{
    /// <summary>
    /// The variant a mode string without one gets, and the default blend of the engine, the service and the chat
    /// clients: chunk tokens start at layer 1 from their E-cache, query attention keeps 2r there and r from layer 2.
    /// Measured best at every ratio (docs/decisions.md, "Fusion fidelity").
    /// </summary>
    public const string Default = "ecachegradual";

    private static readonly (string Name, Func<double, BlendOptions> Build)[] Table =
    [
        ("ref", BlendOptions.Reference),
        ("dev", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.Deviation, Deviation = DeviationTarget.KeyAndValue }),
        ("qattn", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention }),
        ("devxattn", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.DeviationTimesAttention }),
        ("gradual", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2)),
        ("gradualdev", r => Gradual(r, SelectionCriterion.Deviation, 1, 2)),
        ("l0", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, Schedule = [new SelectionStep(0, r)] }),
        ("l0gradual", r => Gradual(r, SelectionCriterion.QueryAttention, 0, 1)),
        ("l0gradualdev", r => new BlendOptions
        {
            Ratio = r,
            Criterion = SelectionCriterion.QueryAttention,
            Schedule = [new SelectionStep(0, Math.Min(1, 2 * r)), new SelectionStep(1, r, SelectionCriterion.DeviationTimesAttention)],
        }),
        ("exact", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.Deviation, ReuseLayerZero = false }),

        // Layers below the check layer are free for chunk tokens: they start there from the stored E-cache.
        ("ecache", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, StartFromHiddenStates = true }),
        ("ecache2", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, CheckLayer = 2, StartFromHiddenStates = true }),
        ("ecache3", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, CheckLayer = 3, StartFromHiddenStates = true }),
        ("ecachegradual", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2) with { StartFromHiddenStates = true }),
        ("ecache2gradual", r => Gradual(r, SelectionCriterion.QueryAttention, 2, 3) with { StartFromHiddenStates = true }),

        // Per-layer ratios around the default's 2r-then-r: a wider first step, and a third step.
        ("ecachegradual3r", r => new BlendOptions
        {
            Ratio = r,
            Criterion = SelectionCriterion.QueryAttention,
            StartFromHiddenStates = true,
            Schedule = [new SelectionStep(1, Math.Min(1, 3 * r)), new SelectionStep(2, r)],
        }),
        ("ecachesteps", r => new BlendOptions
        {
            Ratio = r,
            Criterion = SelectionCriterion.QueryAttention,
            StartFromHiddenStates = true,
            Schedule = [new SelectionStep(1, Math.Min(1, 2 * r)), new SelectionStep(2, Math.Min(1, 1.5 * r)), new SelectionStep(3, r)],
        }),

        // Position-aware: each chunk's first tokens are always recomputed, inside the budget.
        ("head8", r => new BlendOptions { Ratio = r, Criterion = SelectionCriterion.QueryAttention, ChunkHeadTokens = 8 }),
        ("gradualhead8", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2) with { ChunkHeadTokens = 8 }),
        ("ecachegradualhead4", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2) with { StartFromHiddenStates = true, ChunkHeadTokens = 4 }),
        ("ecachegradualhead8", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2) with { StartFromHiddenStates = true, ChunkHeadTokens = 8 }),
        ("ecachegradualhead16", r => Gradual(r, SelectionCriterion.QueryAttention, 1, 2) with { StartFromHiddenStates = true, ChunkHeadTokens = 16 }),
    ];

    // How each criterion reads; {0} is what the deviation measures.
    private static readonly Dictionary<SelectionCriterion, string> Criteria = new()
    {
        [SelectionCriterion.Deviation] = "{0} deviation",
        [SelectionCriterion.QueryAttention] = "query attention",
        [SelectionCriterion.DeviationTimesAttention] = "{0} deviation × query attention",
    };

    private static readonly Dictionary<DeviationTarget, string> Targets = new()
    {
        [DeviationTarget.Key] = "K",
        [DeviationTarget.Value] = "V",
        [DeviationTarget.KeyAndValue] = "K+V",
    };

    // The switches: when each matters for the options' steps, and how it reads on and off.
    private static readonly (Func<BlendOptions, bool> Matters, Func<BlendOptions, bool> IsOn, string On, string Off)[] Switches =
    [
        (o => o.Steps()[0].Layer > 0, o => o.ReuseLayerZero, "stored layer-0 K/V reused", "layer 0 recomputed for all tokens"),
        (o => o.Steps().Any(s => (s.Criterion ?? o.Criterion) == SelectionCriterion.Deviation), o => o.WriteAllAtCheckLayer,
            "fresh K/V of all tokens written at check layers", "unselected tokens keep their stored K/V at check layers"),
        (o => o.StartFromHiddenStates, _ => true, "chunk tokens start at the first check layer from their stored E-cache", ""),
    ];

    /// <summary>The variant names, in table order.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Table.Select(v => v.Name)];

    /// <summary>Whether <paramref name="name"/> is a variant.</summary>
    public static bool IsKnown(string name) => Table.Any(v => v.Name == name);

    /// <summary>The options of a variant (null: <see cref="Default"/>) at recompute ratio <paramref name="ratio"/>.</summary>
    /// <exception cref="FusionException">Unknown variant (<see cref="FusionError.InvalidRequest"/>).</exception>
    public static BlendOptions Build(string? name, double ratio)
    {
        name ??= Default;
        foreach (var (n, build) in Table)
        {
            if (n == name)
            {
                return build(ratio);
            }
        }

        throw new FusionException(FusionError.InvalidRequest, $"Unknown blend variant '{name}'; the variants are {string.Join(", ", Names)}.");
    }

    /// <summary>
    /// What <paramref name="options"/> do, with step ratios as multiples of <paramref name="ratio"/> (written r): the
    /// selection steps in order, then the switches that matter for them.
    /// </summary>
    public static string Describe(BlendOptions options, double ratio)
    {
        ArgumentNullException.ThrowIfNull(options);
        var steps = options.Steps().Select(s => string.Format(CultureInfo.InvariantCulture, "{0} at layer {1} keeps {2}",
            string.Format(CultureInfo.InvariantCulture, Criteria[s.Criterion ?? options.Criterion], Targets[options.Deviation]), s.Layer, Multiple(s.Ratio, ratio)));
        var switches = Switches.Where(s => s.Matters(options)).Select(s => s.IsOn(options) ? s.On : s.Off);
        if (options.ChunkHeadTokens > 0)
        {
            switches = switches.Append(string.Create(CultureInfo.InvariantCulture, $"each chunk's first {options.ChunkHeadTokens} tokens always kept, inside the budget"));
        }

        return string.Join("; ", switches.Prepend(string.Join(", then ", steps)));
    }

    private static BlendOptions Gradual(double r, SelectionCriterion criterion, int firstLayer, int secondLayer) => new()
    {
        Ratio = r,
        Criterion = criterion,
        Schedule = [new SelectionStep(firstLayer, Math.Min(1, 2 * r)), new SelectionStep(secondLayer, r)],
    };

    private static string Multiple(double stepRatio, double ratio)
    {
        var multiple = Math.Round(stepRatio / ratio, 6);
        return multiple == 1 ? "r" : string.Create(CultureInfo.InvariantCulture, $"{multiple}r");
    }
}
