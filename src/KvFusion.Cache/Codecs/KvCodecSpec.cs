using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace KvFusion.Cache.Codecs;

/// <summary>
/// A codec and its quality level, written <c>raw</c>, <c>lz4</c>, <c>fp8</c> or <c>cachegen:LEVEL</c>
/// (level 1 is the most faithful; higher levels are smaller, up to <see cref="MaxCacheGenLevel"/>, meant for slow links).
/// </summary>
/// <param name="Kind">The codec.</param>
/// <param name="Level">The level: 0 for codecs without levels, 1..<see cref="MaxCacheGenLevel"/> for cachegen.</param>
public readonly record struct KvCodecSpec(KvCodecKind Kind, int Level)
{
    /// <summary>The highest cachegen level (the smallest).</summary>
    public const int MaxCacheGenLevel = 3;

    /// <summary>The cachegen level used when none is written.</summary>
    public const int DefaultCacheGenLevel = 2;

    /// <summary>fp16 as it is.</summary>
    public static KvCodecSpec Raw => new(KvCodecKind.Raw, 0);

    /// <summary>Lossless LZ4 over byte planes.</summary>
    public static KvCodecSpec Lz4 => new(KvCodecKind.Lz4, 0);

    /// <summary>fp8 e4m3, a scale per token.</summary>
    public static KvCodecSpec Fp8 => new(KvCodecKind.Fp8, 0);

    /// <summary>A cachegen level.</summary>
    public static KvCodecSpec CacheGen(int level) =>
        level is >= 1 and <= MaxCacheGenLevel
            ? new(KvCodecKind.CacheGen, level)
            : throw new ArgumentOutOfRangeException(nameof(level), level, $"cachegen levels are 1..{MaxCacheGenLevel}.");

    /// <summary>Every codec and level, the lossless ones first.</summary>
    public static IReadOnlyList<KvCodecSpec> All { get; } = BuildAll();

    /// <summary>Whether decoding gives back the stored fp16 values bit for bit.</summary>
    public bool IsLossless => Kind is KvCodecKind.Raw or KvCodecKind.Lz4;

    /// <summary>Whether this kind and level exist.</summary>
    public bool IsValid => Kind switch
    {
        KvCodecKind.Raw or KvCodecKind.Lz4 or KvCodecKind.Fp8 => Level == 0,
        KvCodecKind.CacheGen => Level is >= 1 and <= MaxCacheGenLevel,
        _ => false,
    };

    /// <summary>The codec's name: <c>raw</c>, <c>lz4</c>, <c>fp8</c> or <c>cachegen</c>.</summary>
    public string Name => Kind switch
    {
        KvCodecKind.Raw => "raw",
        KvCodecKind.Lz4 => "lz4",
        KvCodecKind.Fp8 => "fp8",
        KvCodecKind.CacheGen => "cachegen",
        _ => $"codec-{(byte)Kind}",
    };

    /// <summary>The spec as written: <c>raw</c>, <c>lz4</c>, <c>fp8</c>, <c>cachegen:2</c>.</summary>
    public override string ToString() => Kind == KvCodecKind.CacheGen ? $"{Name}:{Level.ToString(CultureInfo.InvariantCulture)}" : Name;

    /// <summary>Parses <c>raw</c>, <c>lz4</c>, <c>fp8</c>, <c>cachegen</c> or <c>cachegen:LEVEL</c> (case-insensitive).</summary>
    /// <exception cref="FormatException">The text names no codec or level; the message lists the valid ones.</exception>
    public static KvCodecSpec Parse(string text) =>
        TryParse(text, out var spec, out var error) ? spec : throw new FormatException(error);

    /// <summary>Parses a spec; on failure <paramref name="error"/> says why and lists the valid ones.</summary>
    public static bool TryParse(string? text, out KvCodecSpec spec, [NotNullWhen(false)] out string? error)
    {
        spec = default;
        var t = text?.Trim() ?? string.Empty;
        var colon = t.IndexOf(':', StringComparison.Ordinal);
        var name = (colon < 0 ? t : t[..colon]).ToLowerInvariant();
        var levelText = colon < 0 ? null : t[(colon + 1)..];
        var valid = $"valid codecs: raw, lz4, fp8, cachegen[:1..{MaxCacheGenLevel}] (cachegen alone is cachegen:{DefaultCacheGenLevel})";
        switch (name)
        {
            case "raw" or "lz4" or "fp8" when levelText is null:
                spec = new(name switch { "raw" => KvCodecKind.Raw, "lz4" => KvCodecKind.Lz4, _ => KvCodecKind.Fp8 }, 0);
                error = null;
                return true;
            case "raw" or "lz4" or "fp8":
                error = $"Codec '{t}': {name} has no levels; {valid}.";
                return false;
            case "cachegen" when levelText is null:
                spec = new(KvCodecKind.CacheGen, DefaultCacheGenLevel);
                error = null;
                return true;
            case "cachegen":
                if (int.TryParse(levelText, NumberStyles.None, CultureInfo.InvariantCulture, out var level) && level is >= 1 and <= MaxCacheGenLevel)
                {
                    spec = new(KvCodecKind.CacheGen, level);
                    error = null;
                    return true;
                }

                error = $"Codec '{t}': the cachegen level must be 1..{MaxCacheGenLevel}; {valid}.";
                return false;
            default:
                error = $"Codec '{t}' is unknown; {valid}.";
                return false;
        }
    }

    private static KvCodecSpec[] BuildAll()
    {
        var all = new List<KvCodecSpec> { Raw, Lz4, Fp8 };
        for (var level = 1; level <= MaxCacheGenLevel; level++)
        {
            all.Add(new(KvCodecKind.CacheGen, level));
        }

        return [.. all];
    }
}
