using System.Globalization;

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
}

/// <summary>A mode with its recompute ratio, as written on command lines: <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>blend:0.15</c>.</summary>
/// <param name="Mode">The mode.</param>
/// <param name="Ratio">Blend's recompute ratio (ignored by other modes).</param>
/// <param name="Variant">An optional named blend variant after a second colon (e.g. <c>blend:0.15:qattn</c>).</param>
public readonly record struct FusionModeSpec(FusionMode Mode, double Ratio, string? Variant = null)
{
    /// <summary>Parses <c>full</c>, <c>prefix</c>, <c>reuse</c>, <c>blend</c>, <c>blend:R</c> or <c>blend:R:VARIANT</c>.</summary>
    /// <exception cref="FormatException">Unknown mode or a ratio outside (0, 1].</exception>
    public static FusionModeSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split(':');
        var mode = parts[0].ToLowerInvariant() switch
        {
            "full" => FusionMode.Full,
            "prefix" => FusionMode.Prefix,
            "reuse" => FusionMode.Reuse,
            "blend" => FusionMode.Blend,
            _ => throw new FormatException($"Unknown fusion mode '{parts[0]}' (full, prefix, reuse, blend[:ratio[:variant]])."),
        };
        var ratio = BlendOptions.DefaultRatio;
        if (parts.Length > 1)
        {
            if (mode != FusionMode.Blend)
            {
                throw new FormatException($"Mode '{parts[0]}' takes no ratio.");
            }

            if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out ratio) || !(ratio > 0 && ratio <= 1))
            {
                throw new FormatException($"Blend ratio '{parts[1]}' must be a number in (0, 1].");
            }
        }

        return new FusionModeSpec(mode, ratio, parts.Length > 2 ? parts[2] : null);
    }

    /// <inheritdoc />
    public override string ToString() => Mode switch
    {
        FusionMode.Blend => Variant is null
            ? string.Create(CultureInfo.InvariantCulture, $"blend:{Ratio:0.###}")
            : string.Create(CultureInfo.InvariantCulture, $"blend:{Ratio:0.###}:{Variant}"),
        _ => Mode.ToString().ToLowerInvariant(),
    };
}
