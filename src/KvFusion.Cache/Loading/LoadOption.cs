using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Loading;

/// <summary>Where a chunk's KV comes from in a fused prompt.</summary>
public enum LoadSource
{
    /// <summary>A stored container: read from a tier, decoded, and (with blend) partly recomputed.</summary>
    Stored,

    /// <summary>The chunk computed here from its text (as a precompute would): nothing read, nothing lost to a codec.</summary>
    Text,
}

/// <summary>One way to bring a chunk into a fused prompt: a stored level (tier, codec, size, the KL its codec adds) or its text.</summary>
public sealed record LoadOption
{
    /// <summary>Stored or text.</summary>
    public required LoadSource Source { get; init; }

    /// <summary>The stored container's codec (stored only).</summary>
    public KvCodecSpec Codec { get; init; }

    /// <summary>The tier the container is read from (stored only).</summary>
    public string? Tier { get; init; }

    /// <summary>The container's size in bytes (stored only).</summary>
    public long Bytes { get; init; }

    /// <summary>
    /// The mean KL(full ‖ fused) the codec adds over lossless storage, as the eval harness measured it for this model
    /// and level (<c>kvfusion bench codec</c>); 0 for lossless codecs and text.
    /// </summary>
    public double CodecKl { get; init; }

    /// <summary>A stored level.</summary>
    public static LoadOption Stored(string tier, KvCodecSpec codec, long bytes, double codecKl)
    {
        ArgumentException.ThrowIfNullOrEmpty(tier);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (!(codecKl >= 0) || double.IsInfinity(codecKl))
        {
            throw new ArgumentOutOfRangeException(nameof(codecKl), codecKl, "A codec's KL must be finite and zero or more.");
        }

        return new LoadOption { Source = LoadSource.Stored, Codec = codec, Tier = tier, Bytes = bytes, CodecKl = codecKl };
    }

    /// <summary>The chunk's text.</summary>
    public static LoadOption Text { get; } = new() { Source = LoadSource.Text };

    /// <summary>A short name for reports: <c>text</c>, or the codec and tier (<c>cachegen:2@redis</c>).</summary>
    public override string ToString() => Source == LoadSource.Text ? "text" : $"{Codec}@{Tier}";
}

/// <summary>A chunk of the prompt and the ways it can be loaded.</summary>
public sealed record LoadChunk(int Tokens, IReadOnlyList<LoadOption> Options);

/// <summary>A blend recompute ratio the controller may use, with the KL it is expected to leave (at or below the quality floor).</summary>
public readonly record struct LoadRatio(double Ratio, double Kl);
