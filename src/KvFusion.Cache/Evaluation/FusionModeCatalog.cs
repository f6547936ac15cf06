using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Evaluation;

/// <summary>
/// Named fusion configurations for the harness: <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>blend:R</c> (the
/// default blend) and <c>blend:R:VARIANT</c>, where the variant switches between the reference behaviour and each
/// improvement so they can be compared (the table is <see cref="BlendVariants"/>).
/// </summary>
public static class FusionModeCatalog
{
    /// <summary>
    /// Blend variants by name, each described by what its options do (step ratios as multiples of r), composed from
    /// the options themselves.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Variants { get; } = BlendVariants.Names.ToDictionary(
        name => name, name => BlendVariants.Describe(BlendVariants.Build(name, BlendOptions.DefaultRatio), BlendOptions.DefaultRatio), StringComparer.Ordinal);

    /// <summary>Turns a mode spec into a request mode and blend options.</summary>
    /// <exception cref="FusionException">Unknown variant (<see cref="FusionError.InvalidRequest"/>).</exception>
    public static (FusionMode Mode, BlendOptions Blend) Resolve(FusionModeSpec spec) =>
        spec.Mode == FusionMode.Blend ? (FusionMode.Blend, BlendVariants.Build(spec.Variant, spec.Ratio)) : (spec.Mode, new BlendOptions());
}
