using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace KvFusion.Cache.Codecs.Raw;

/// <summary>fp16 values as they are, little-endian: the payload is exactly two bytes per value.</summary>
internal sealed class RawCodec : KvSectionCodec
{
    public static RawCodec Instance { get; } = new();

    private RawCodec() { }

    public override KvCodecSpec Spec => KvCodecSpec.Raw;

    public override int ParametersLength => 0;

    public override void WriteParameters(Span<byte> destination) { }

    public override long MaxEncodedLength(in KvSectionShape shape) => shape.ValueCount * sizeof(ushort);

    public override KvSectionEncoding Encode(ReadOnlySpan<Half> values, in KvSectionShape shape, Span<byte> destination)
    {
        var length = checked((int)(shape.ValueCount * sizeof(ushort)));
        if (values.Length != shape.ValueCount)
        {
            throw new ArgumentException($"The section holds {values.Length} values, its shape {shape.ValueCount}.", nameof(values));
        }

        var bits = MemoryMarshal.Cast<Half, ushort>(values);
        var target = MemoryMarshal.Cast<byte, ushort>(destination[..length]);
        if (BitConverter.IsLittleEndian)
        {
            bits.CopyTo(target);
        }
        else
        {
            BinaryPrimitives.ReverseEndianness(bits, target);
        }

        return new KvSectionEncoding(length, 0);
    }

    public override void Decode(ReadOnlySpan<byte> payload, in KvSectionShape shape, Span<Half> destination)
    {
        if (payload.Length != shape.ValueCount * sizeof(ushort))
        {
            throw new KvCodecException($"A raw section of {shape.ValueCount} values must be {shape.ValueCount * sizeof(ushort)} bytes; it is {payload.Length}.");
        }

        var source = MemoryMarshal.Cast<byte, ushort>(payload);
        var target = MemoryMarshal.Cast<Half, ushort>(destination[..source.Length]);
        if (BitConverter.IsLittleEndian)
        {
            source.CopyTo(target);
        }
        else
        {
            BinaryPrimitives.ReverseEndianness(source, target);
        }
    }
}
