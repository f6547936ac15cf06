using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using K4os.Compression.LZ4;

namespace KvFusion.Cache.Codecs.Lz4;

/// <summary>
/// Lossless: the fp16 values are split into two byte planes (every value's low byte, then every value's high byte),
/// and each plane is compressed with LZ4 (block format), or stored as it is when LZ4 does not make it smaller.
/// </summary>
/// <remarks>
/// <para>Why planes: a value's high byte (sign, exponent, two mantissa bits) repeats a lot across a section while its
/// low byte is close to noise; apart, LZ4 finds the high plane's repeats and does not waste matches on the low
/// plane. Rows of identical values (layer 0's K/V depend only on the token) still match in both planes.</para>
/// <para>Payload layout (n = the section's value count, all integers little-endian):</para>
/// <list type="number">
/// <item><c>u32 lowLength</c>, <c>u32 highLength</c>: the stored lengths of the two planes, each at most n.</item>
/// <item>The low plane's <c>lowLength</c> bytes, then the high plane's <c>highLength</c> bytes. A plane whose length
/// is exactly n is stored verbatim (byte i is the low, or high, byte of value i); a shorter plane is one LZ4 block
/// (no frame, no checksum) that decodes to exactly n bytes.</item>
/// </list>
/// <para>The payload is exactly <c>8 + lowLength + highLength</c> bytes. Decoding rejects any other length, a plane
/// longer than n, and a block that is malformed or does not decode to exactly n bytes. The encoder uses LZ4 HC
/// level 9 (see docs/codecs/lz4.md: decode speed is what matters, and HC blocks decode as fast as fast-mode ones).</para>
/// </remarks>
internal sealed class Lz4Codec : KvSectionCodec
{
    /// <summary>The bytes before the planes: the two stored plane lengths.</summary>
    public const int HeaderLength = 2 * sizeof(uint);

    // Encoding happens once per chunk and decoding on every load, so the ratio of HC is worth its encode time.
    private const LZ4Level Level = LZ4Level.L09_HC;

    // Both planes (2 bytes per value) must fit one pooled int-indexed buffer.
    private const long MaxValues = (int.MaxValue - HeaderLength) / 2;

    private Lz4Codec() { }

    /// <summary>The codec (it has no parameters).</summary>
    public static Lz4Codec Instance { get; } = new();

    /// <inheritdoc />
    public override KvCodecSpec Spec => KvCodecSpec.Lz4;

    /// <inheritdoc />
    public override int ParametersLength => 0;

    /// <inheritdoc />
    public override void WriteParameters(Span<byte> destination) { }

    /// <inheritdoc />
    public override long MaxEncodedLength(in KvSectionShape shape) => HeaderLength + (shape.ValueCount * sizeof(ushort));

    /// <inheritdoc />
    public override KvSectionEncoding Encode(ReadOnlySpan<Half> values, in KvSectionShape shape, Span<byte> destination)
    {
        if (values.Length != shape.ValueCount)
        {
            throw new ArgumentException($"The section holds {values.Length} values, its shape {shape.ValueCount}.", nameof(values));
        }

        if (shape.ValueCount > MaxValues)
        {
            throw new ArgumentException($"A section of {shape.ValueCount} values exceeds the lz4 codec's limit of {MaxValues}.", nameof(shape));
        }

        var n = values.Length;
        if (destination.Length < HeaderLength + (2L * n))
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes; MaxEncodedLength is {HeaderLength + (2L * n)}.", nameof(destination));
        }

        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(1, 2 * n));
        try
        {
            var low = rented.AsSpan(0, n);
            var high = rented.AsSpan(n, n);
            Split(MemoryMarshal.Cast<Half, ushort>(values), low, high);
            var lowLength = EncodePlane(low, destination[HeaderLength..]);
            var highLength = EncodePlane(high, destination[(HeaderLength + lowLength)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)lowLength);
            BinaryPrimitives.WriteUInt32LittleEndian(destination[sizeof(uint)..], (uint)highLength);
            return new KvSectionEncoding(HeaderLength + lowLength + highLength, 0);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <inheritdoc />
    public override void Decode(ReadOnlySpan<byte> payload, in KvSectionShape shape, Span<Half> destination)
    {
        var count = shape.ValueCount;
        if (shape.Heads < 0 || shape.Tokens < 0 || shape.Width < 0 || count > MaxValues)
        {
            throw new KvCodecException($"An lz4 section of shape {shape.Heads}x{shape.Tokens}x{shape.Width} is negative or exceeds the limit of {MaxValues} values.");
        }

        var n = (int)count;
        if (destination.Length < n)
        {
            throw new ArgumentException($"The destination holds {destination.Length} values; the section has {n}.", nameof(destination));
        }

        if (payload.Length < HeaderLength)
        {
            throw new KvCodecException($"An lz4 section is truncated: {payload.Length} bytes, its header alone needs {HeaderLength}.");
        }

        var lowLength = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        var highLength = BinaryPrimitives.ReadUInt32LittleEndian(payload[sizeof(uint)..]);
        if (lowLength > (uint)n || highLength > (uint)n)
        {
            throw new KvCodecException($"An lz4 section of {n} values declares planes of {lowLength} and {highLength} bytes; a plane is at most {n}.");
        }

        if (payload.Length != HeaderLength + (long)lowLength + highLength)
        {
            throw new KvCodecException($"An lz4 section declares {HeaderLength + (long)lowLength + highLength} bytes; its payload has {payload.Length}.");
        }

        var lowStored = payload.Slice(HeaderLength, (int)lowLength);
        var highStored = payload.Slice(HeaderLength + (int)lowLength, (int)highLength);
        var verbatim = lowLength == n && highLength == n;
        var rented = verbatim ? null : ArrayPool<byte>.Shared.Rent(2 * n);
        try
        {
            var low = lowLength == n ? lowStored : DecodePlane(lowStored, rented.AsSpan(0, n), "low");
            var high = highLength == n ? highStored : DecodePlane(highStored, rented.AsSpan(n, n), "high");
            Merge(low, high, MemoryMarshal.Cast<Half, ushort>(destination[..n]));
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Writes a plane as an LZ4 block when that is shorter than the plane, else verbatim; returns its length.</summary>
    private static int EncodePlane(ReadOnlySpan<byte> plane, Span<byte> destination)
    {
        var n = plane.Length;
        if (n > 0)
        {
            // A block may only be used when it is strictly shorter than the plane (the length tells the two apart).
            var written = LZ4Codec.Encode(plane, destination[..(n - 1)], Level);
            if (written > 0 && written < n)
            {
                return written;
            }
        }

        plane.CopyTo(destination);
        return n;
    }

    private static ReadOnlySpan<byte> DecodePlane(ReadOnlySpan<byte> block, Span<byte> target, string name)
    {
        // K4os decodes with bounds checks on both sides (LZ4_decompress_safe) and returns a negative length for a
        // malformed block, including one that would write past the exactly-sized target.
        var decoded = LZ4Codec.Decode(block, target);
        if (decoded != target.Length)
        {
            throw new KvCodecException(decoded < 0
                ? $"The {name} plane of an lz4 section is not a valid LZ4 block for {target.Length} bytes."
                : $"The {name} plane of an lz4 section decodes to {decoded} bytes; the section needs {target.Length}.");
        }

        return target;
    }

    /// <summary>Splits 16-bit values into their low and high bytes (value bits, so independent of endianness).</summary>
    internal static void Split(ReadOnlySpan<ushort> values, Span<byte> low, Span<byte> high)
    {
        var n = values.Length;
        low = low[..n];
        high = high[..n];
        ref var src = ref MemoryMarshal.GetReference(values);
        ref var lo = ref MemoryMarshal.GetReference(low);
        ref var hi = ref MemoryMarshal.GetReference(high);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // Narrowing truncates each 16-bit lane to its low byte; shifting first gives the high byte.
            for (; i <= n - (2 * Vector256<ushort>.Count); i += 2 * Vector256<ushort>.Count)
            {
                var a = Vector256.LoadUnsafe(ref src, (nuint)i);
                var b = Vector256.LoadUnsafe(ref src, (nuint)(i + Vector256<ushort>.Count));
                Vector256.Narrow(a, b).StoreUnsafe(ref lo, (nuint)i);
                Vector256.Narrow(Vector256.ShiftRightLogical(a, 8), Vector256.ShiftRightLogical(b, 8)).StoreUnsafe(ref hi, (nuint)i);
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - (2 * Vector128<ushort>.Count); i += 2 * Vector128<ushort>.Count)
            {
                var a = Vector128.LoadUnsafe(ref src, (nuint)i);
                var b = Vector128.LoadUnsafe(ref src, (nuint)(i + Vector128<ushort>.Count));
                Vector128.Narrow(a, b).StoreUnsafe(ref lo, (nuint)i);
                Vector128.Narrow(Vector128.ShiftRightLogical(a, 8), Vector128.ShiftRightLogical(b, 8)).StoreUnsafe(ref hi, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            var v = Unsafe.Add(ref src, i);
            Unsafe.Add(ref lo, i) = (byte)v;
            Unsafe.Add(ref hi, i) = (byte)(v >> 8);
        }
    }

    /// <summary>Joins low and high bytes back into 16-bit values.</summary>
    internal static void Merge(ReadOnlySpan<byte> low, ReadOnlySpan<byte> high, Span<ushort> values)
    {
        var n = values.Length;
        low = low[..n];
        high = high[..n];
        ref var lo = ref MemoryMarshal.GetReference(low);
        ref var hi = ref MemoryMarshal.GetReference(high);
        ref var dst = ref MemoryMarshal.GetReference(values);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                var l = Vector256.LoadUnsafe(ref lo, (nuint)i);
                var h = Vector256.LoadUnsafe(ref hi, (nuint)i);
                var (l0, l1) = Vector256.Widen(l);
                var (h0, h1) = Vector256.Widen(h);
                (l0 | Vector256.ShiftLeft(h0, 8)).StoreUnsafe(ref dst, (nuint)i);
                (l1 | Vector256.ShiftLeft(h1, 8)).StoreUnsafe(ref dst, (nuint)(i + Vector256<ushort>.Count));
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= n - Vector128<byte>.Count; i += Vector128<byte>.Count)
            {
                var l = Vector128.LoadUnsafe(ref lo, (nuint)i);
                var h = Vector128.LoadUnsafe(ref hi, (nuint)i);
                var (l0, l1) = Vector128.Widen(l);
                var (h0, h1) = Vector128.Widen(h);
                (l0 | Vector128.ShiftLeft(h0, 8)).StoreUnsafe(ref dst, (nuint)i);
                (l1 | Vector128.ShiftLeft(h1, 8)).StoreUnsafe(ref dst, (nuint)(i + Vector128<ushort>.Count));
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref dst, i) = (ushort)(Unsafe.Add(ref lo, i) | (Unsafe.Add(ref hi, i) << 8));
        }
    }
}
