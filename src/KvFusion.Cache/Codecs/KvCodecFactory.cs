using KvFusion.Cache.Codecs.Fp8;
using KvFusion.Cache.Codecs.Lz4;
using KvFusion.Cache.Codecs.Raw;

namespace KvFusion.Cache.Codecs;

/// <summary>Builds the codec of a spec for an entry shape (to encode), or from a container's parameters (to decode).</summary>
internal static class KvCodecFactory
{
    /// <summary>The codec that encodes entries of <paramref name="shape"/> with <paramref name="spec"/>.</summary>
    public static KvSectionCodec ForEncoding(KvCodecSpec spec, in KvEntryShape shape)
    {
        if (!spec.IsValid)
        {
            throw new ArgumentException($"'{spec}' is not a codec.", nameof(spec));
        }

        return spec.Kind switch
        {
            KvCodecKind.Raw => RawCodec.Instance,
            KvCodecKind.Lz4 => Lz4Codec.Instance,
            KvCodecKind.Fp8 => Fp8Codec.Instance,
            _ => throw new NotSupportedException($"The {spec} codec is being built (issue 9)."),
        };
    }

    /// <summary>Rebuilds a codec from the parameters a container stored.</summary>
    /// <exception cref="KvCodecException">The spec is unknown or the parameters are invalid for the shape.</exception>
    public static KvSectionCodec ForDecoding(KvCodecSpec spec, ReadOnlySpan<byte> parameters, in KvEntryShape shape)
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
                throw new NotSupportedException($"The {spec} codec is being built (issue 9).");
        }
    }

    private static KvSectionCodec WithoutParameters(KvSectionCodec codec, ReadOnlySpan<byte> parameters) =>
        parameters.IsEmpty
            ? codec
            : throw new KvCodecException($"The {codec.Spec} codec has no parameters; the container carries {parameters.Length} bytes.");
}
