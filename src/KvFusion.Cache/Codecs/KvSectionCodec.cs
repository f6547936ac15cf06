namespace KvFusion.Cache.Codecs;

/// <summary>
/// A codec configured for one entry shape: it encodes and decodes one section at a time. Instances are immutable and
/// thread-safe, so the container encodes and decodes sections in parallel with one instance; scratch memory is
/// pooled per call, never allocated per value.
/// </summary>
/// <remarks>
/// Everything a decoder needs beyond a section's payload is in <see cref="WriteParameters"/>' bytes, which the
/// container stores in its header; <see cref="KvCodecFactory.ForDecoding"/> rebuilds the codec from them.
/// </remarks>
internal abstract class KvSectionCodec
{
    /// <summary>The codec and level.</summary>
    public abstract KvCodecSpec Spec { get; }

    /// <summary>Length of the parameters written into the container header.</summary>
    public abstract int ParametersLength { get; }

    /// <summary>Writes the parameters (exactly <see cref="ParametersLength"/> bytes).</summary>
    public abstract void WriteParameters(Span<byte> destination);

    /// <summary>An upper bound of the payload of a section of this shape; the reader rejects longer payloads.</summary>
    public abstract long MaxEncodedLength(in KvSectionShape shape);

    /// <summary>Encodes a section's values (laid out as <paramref name="shape"/> says) into <paramref name="destination"/>,
    /// which holds at least <see cref="MaxEncodedLength"/> bytes.</summary>
    public abstract KvSectionEncoding Encode(ReadOnlySpan<Half> values, in KvSectionShape shape, Span<byte> destination);

    /// <summary>Decodes a whole payload into exactly <paramref name="shape"/>.ValueCount values.</summary>
    /// <exception cref="KvCodecException">The payload is corrupt or does not fit the shape.</exception>
    public abstract void Decode(ReadOnlySpan<byte> payload, in KvSectionShape shape, Span<Half> destination);
}
