using System.Globalization;
using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Fusion;

/// <summary>How a fused prompt is computed (DESIGN.md, "Fusion").</summary>
public enum FusionMode
{
    /// <summary>Recompute everything: the quality reference.</summary>
    Full,

    /// <summary>Exact prefix reuse via chained 256-token block ids, then compute the rest.</summary>
    Prefix,

    /// <summary>Stored chunk caches as they are; only the query (and an uncached prefix) is computed.</summary>
    Reuse,

    /// <summary>CacheBlend: recompute only the tokens whose K/V deviate most, from the check layer on.</summary>
    Blend,

    /// <summary>
    /// Cross-model sharing (DroidSpeak): the chunks are caches another model of the family computed; the receiver
    /// recomputes the request's layer ranges from the sender's E-cache and reuses the sender's K/V elsewhere.
    /// </summary>
    Share,
}

/// <summary>A mode with its recompute ratio, as written on command lines: <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>share</c>, <c>blend:0.15</c>.</summary>
/// <param name="Mode">The mode.</param>
/// <param name="Ratio">Blend's recompute ratio (ignored by other modes).</param>
/// <param name="Variant">An optional named blend variant after a second colon (e.g. <c>blend:0.15:qattn</c>).</param>
/// <param name="Recompute">
/// Share's recompute ranges after the colon (e.g. <c>share:0-1,4</c>; null: the sender's profile). On blend, set when
/// blend fuses another model's caches (<c>blend:0.15+share:0-3</c>): the ranges' layers are recomputed for every chunk
/// token, and blend's selection recomputes its tokens in the others.
/// </param>
public readonly record struct FusionModeSpec(FusionMode Mode, double Ratio, string? Variant = null, RecomputeRanges? Recompute = null)
{
    /// <summary>The forms a mode string takes, as listed in parse errors.</summary>
    public static string ValidForms =>
        $"full, prefix, reuse, share, share:RANGES, blend, blend:R, blend:R:VARIANT, BLEND+share:RANGES (R in (0, 1]; RANGES none or layer ranges such as 0-1,4; VARIANT one of {string.Join(", ", BlendVariants.Names)}; BLEND one of the blend forms)";

    /// <summary>Parses <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>share</c>, <c>share:RANGES</c>, <c>blend</c>, <c>blend:R</c> or <c>blend:R:VARIANT</c>.</summary>
    /// <exception cref="FusionException">
    /// <see cref="FusionError.InvalidRequest"/>: an unknown mode or variant, a ratio that is not a number in (0, 1], a
    /// ratio on a mode other than blend, or parts after the variant. The message names the bad part and lists
    /// <see cref="ValidForms"/>.
    /// </exception>
    public static FusionModeSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var plus = text.IndexOf("+share:", StringComparison.OrdinalIgnoreCase);
        if (plus >= 0)
        {
            var blend = Parse(text[..plus]);
            if (blend.Mode != FusionMode.Blend || blend.Recompute is not null)
            {
                throw Invalid(text, $"only a blend mode combines with share, got '{text[..plus]}'");
            }

            try
            {
                return blend with { Recompute = RecomputeRanges.Parse(text[(plus + "+share:".Length)..]) };
            }
            catch (FormatException e)
            {
                throw Invalid(text, e.Message);
            }
        }

        var parts = text.Trim().Split(':');
        var mode = parts[0].ToLowerInvariant() switch
        {
            "full" => FusionMode.Full,
            "prefix" => FusionMode.Prefix,
            "reuse" => FusionMode.Reuse,
            "blend" => FusionMode.Blend,
            "share" => FusionMode.Share,
            _ => throw Invalid(text, $"unknown mode '{parts[0]}'"),
        };
        if (mode == FusionMode.Share)
        {
            if (parts.Length > 2)
            {
                throw Invalid(text, $"share takes one list of layer ranges, got '{string.Join(':', parts[1..])}'");
            }

            try
            {
                return new FusionModeSpec(mode, BlendOptions.DefaultRatio, null, parts.Length > 1 ? RecomputeRanges.Parse(parts[1]) : null);
            }
            catch (FormatException e)
            {
                throw Invalid(text, e.Message);
            }
        }

        if (parts.Length > 1 && mode != FusionMode.Blend)
        {
            throw Invalid(text, $"mode '{parts[0]}' takes no ratio, got '{parts[1]}'");
        }

        if (parts.Length > 3)
        {
            throw Invalid(text, $"nothing may follow the variant, got '{string.Join(':', parts[3..])}'");
        }

        var ratio = BlendOptions.DefaultRatio;
        if (parts.Length > 1 && (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out ratio) || !(ratio > 0 && ratio <= 1)))
        {
            throw Invalid(text, $"the blend ratio '{parts[1]}' is not a number in (0, 1]");
        }

        var variant = parts.Length > 2 ? parts[2] : null;
        if (variant is not null && !BlendVariants.IsKnown(variant))
        {
            throw Invalid(text, $"unknown blend variant '{variant}'");
        }

        return new FusionModeSpec(mode, ratio, variant);
    }

    /// <inheritdoc />
    public override string ToString() => Mode switch
    {
        FusionMode.Blend => (Variant is null
            ? string.Create(CultureInfo.InvariantCulture, $"blend:{Ratio:0.###}")
            : string.Create(CultureInfo.InvariantCulture, $"blend:{Ratio:0.###}:{Variant}"))
            + (Recompute is null ? string.Empty : $"+share:{Recompute}"),
        FusionMode.Share => Recompute is null ? "share" : $"share:{Recompute}",
        _ => Mode.ToString().ToLowerInvariant(),
    };

    private static FusionException Invalid(string text, string problem) =>
        new(FusionError.InvalidRequest, $"Invalid fusion mode '{text}': {problem}. Valid forms: {ValidForms}.");
}
