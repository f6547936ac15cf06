using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Loading;

/// <summary>
/// What the loading controller may choose from for a model's chunks: the tier they are read from, the codec of a
/// chunk's own entry there and the extra levels it keeps (<see cref="Tiers.KvStoredLevels"/>), and the KL each lossy
/// codec adds (as the eval harness measured it for the model: <c>kvfusion bench codec</c>). A lossy level without a
/// measured KL is never chosen.
/// </summary>
public sealed record LoadingOptions
{
    /// <summary>The tier whose measured transfer cost prices a read (the first lower tier: memory misses go there).</summary>
    public required string Tier { get; init; }

    /// <summary>The codec of a chunk's own entry in that tier.</summary>
    public required KvCodecSpec StoredCodec { get; init; }

    /// <summary>The extra levels that tier keeps of every chunk.</summary>
    public IReadOnlyList<KvCodecSpec> Levels { get; init; } = [];

    /// <summary>The mean KL(full ‖ fused) each lossy codec adds over lossless storage; lossless codecs add none.</summary>
    public IReadOnlyDictionary<KvCodecSpec, double> CodecKl { get; init; } = new Dictionary<KvCodecSpec, double>();

    /// <summary>Whether a chunk may be computed from its text here instead of read.</summary>
    public bool AllowText { get; init; } = true;

    /// <summary>
    /// How old the tier's transfer estimate may grow while every chunk is computed from text (so nothing is read and
    /// the estimate would never learn that the link got faster) before one chunk's smallest level is read in the
    /// background to refresh it.
    /// </summary>
    public TimeSpan RefreshAfter { get; init; } = TimeSpan.FromSeconds(5);
}
