using System.Globalization;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;

namespace KvFusion.Cache.Storage;

/// <summary>Settings of a <see cref="ContainerKvStore"/>.</summary>
public sealed record ContainerKvStoreOptions
{
    /// <summary>The codec entries are encoded with on put (decoding reads the codec each container names).</summary>
    public KvCodecSpec Codec { get; init; } = KvCodecSpec.Raw;

    /// <summary>Where decode times are recorded (per codec, against the fp16 bytes decoded) for the loading controller; null: nowhere.</summary>
    public Loading.LoadCostModel? CostModel { get; init; }

    /// <summary>The limits every blob read back is checked against before anything is allocated.</summary>
    public KvContainerLimits Limits { get; init; } = KvContainerLimits.Default;

    /// <summary>
    /// Write each entry's token ids into its container. Fusion by chunk id needs them (the stored tokens are the
    /// chunk's prompt tokens), so leave it on unless every caller sends the tokens.
    /// </summary>
    public bool IncludeTokenIds { get; init; } = true;

    /// <summary>
    /// Codec profiles: cachegen entries are encoded with the model's profile of their level when this holds one (no
    /// statistics in the blob), and containers that name a profile decode only when it is here.
    /// </summary>
    public KvCodecProfiles Profiles { get; init; } = KvCodecProfiles.None;

    /// <summary>Sections encoded or decoded at once within one entry.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (!Codec.IsValid)
        {
            throw new ArgumentException($"{nameof(Codec)} '{Codec}' is not a codec.");
        }

        if (Limits is null)
        {
            throw new ArgumentException($"{nameof(Limits)} must be set.");
        }

        if (Profiles is null)
        {
            throw new ArgumentException($"{nameof(Profiles)} must be set (KvCodecProfiles.None for none).");
        }

        if (MaxDegreeOfParallelism < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(MaxDegreeOfParallelism)} must be at least 1; got {MaxDegreeOfParallelism}."));
        }
    }
}
