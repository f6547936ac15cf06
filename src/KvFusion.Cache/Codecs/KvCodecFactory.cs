using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Codecs.Fp8;
using KvFusion.Cache.Codecs.Lz4;
using KvFusion.Cache.Codecs.Raw;

namespace KvFusion.Cache.Codecs;

/// <summary>Builds the codec of a spec for an entry shape (to encode), or from a container's parameters (to decode).</summary>
internal static class KvCodecFactory
{
    /// <summary>The codec that encodes entries of <paramref name="shape"/> with <paramref name="spec"/>; cachegen uses
    /// the profile of <paramref name="modelFingerprint"/> and the level in <paramref name="profiles"/> when it has one
    /// of the same shape, else inline statistics.</summary>
    /// <remarks>A <paramref name="tuning"/> replaces a cachegen level's quantization (the level is still recorded).</remarks>
    public static KvSectionCodec ForEncoding(KvCodecSpec spec, in KvEntryShape shape, string? modelFingerprint = null, KvCodecProfiles? profiles = null, CacheGenTuning? tuning = null)
    {
        if (!spec.IsValid)
        {
            throw new ArgumentException($"'{spec}' is not a codec.", nameof(spec));
        }

        switch (spec.Kind)
        {
            case KvCodecKind.Raw:
                return RawCodec.Instance;
            case KvCodecKind.Lz4:
                return Lz4Codec.Instance;
            case KvCodecKind.Fp8:
                return Fp8Codec.Instance;
            default:
                var parameters = tuning is null
                    ? CacheGenParameters.ForLevel(spec.Level, shape.LayerCount)
                    : tuning.ToParameters(shape.LayerCount) with { Level = spec.Level };
                var profile = modelFingerprint is null ? null : profiles?.Find(modelFingerprint, spec.Level);
                if (profile is not null && profile.LayerCount == shape.LayerCount && profile.Channels == shape.KvHeads * shape.HeadDim &&
                    profile.Parameters.SameQuantization(parameters))
                {
                    return new CacheGenCodec(parameters.WithProfile(profile.IdBytes), profile);
                }

                return new CacheGenCodec(parameters, null);
        }
    }

    /// <summary>Rebuilds a codec from the parameters a container stored.</summary>
    /// <exception cref="KvCodecException">The spec is unknown, the parameters are invalid for the shape, or they name
    /// a profile that <paramref name="profiles"/> does not hold.</exception>
    public static KvSectionCodec ForDecoding(KvCodecSpec spec, ReadOnlySpan<byte> parameters, in KvEntryShape shape, KvCodecProfiles? profiles = null)
    {
        if (!spec.IsValid)
        {
            throw new KvCodecException($"Codec {(byte)spec.Kind} level {spec.Level} is not one this version knows.");
        }

        switch (spec.Kind)
        {
            case KvCodecKind.Raw:
                return WithoutParameters(RawCodec.Instance, parameters);
            case KvCodecKind.Lz4:
                return WithoutParameters(Lz4Codec.Instance, parameters);
            case KvCodecKind.Fp8:
                return WithoutParameters(Fp8Codec.Instance, parameters);
            default:
                var read = CacheGenParameters.Read(parameters, spec.Level, shape.LayerCount);
                if (read.Statistics == CacheGenStatistics.Inline)
                {
                    return new CacheGenCodec(read, null);
                }

                var id = Convert.ToHexStringLower(read.ProfileId.Span);
                var profile = profiles?.FindById(id)
                    ?? throw new KvCodecException($"The container was coded with cachegen profile {id}, which this process does not have: load it (KvCodecProfiles.LoadDirectory) to decode the container.") { MissingProfileId = id };
                if (profile.Channels != shape.KvHeads * shape.HeadDim || !profile.Parameters.SameQuantization(read))
                {
                    throw new KvCodecException($"Cachegen profile {id} does not match the container's shape or levels.");
                }

                return new CacheGenCodec(read, profile);
        }
    }

    private static KvSectionCodec WithoutParameters(KvSectionCodec codec, ReadOnlySpan<byte> parameters) =>
        parameters.IsEmpty
            ? codec
            : throw new KvCodecException($"The {codec.Spec} codec has no parameters; the container carries {parameters.Length} bytes.");
}
