using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using K4os.Compression.LZ4;

namespace KvFusion.Cache.Codecs.Lz4;

/// <summary>
/// Lossless: each fp16 value's 5-bit exponent is renumbered by the section's exponent frequencies (most frequent
/// becomes 0), the 16 bits of the renumbered values are transposed into 16 bit planes (bitshuffle), and each plane is
/// compressed with LZ4 (block format), or stored as it is when LZ4 does not make it smaller.
/// </summary>
/// <remarks>
/// <para>Why: KV values are sign and mantissa noise (about 11 bits) with a concentrated exponent (about 2.6 bits of
/// entropy). LZ4 has no entropy coder, so it only gains on runs and repeats: renumbering makes the top exponent bit
/// planes almost all zero (long runs), the noise planes are stored verbatim, and rows of identical values (layer 0's
/// K/V depend only on the token) still match inside every plane. See docs/decisions.md, "lz4 layout".</para>
/// <para>Payload layout (n = the section's value count, p = ceil(n / 8), all integers little-endian):</para>
/// <list type="number">
/// <item><c>u8 layout</c> = 1 (<see cref="LayoutBitshuffle"/>); any other value is rejected.</item>
/// <item><c>u8 code[32]</c>: the code of each exponent (code[e] for exponent e); a permutation of 0..31.</item>
/// <item><c>u32 length[16]</c>: the stored length of bit plane 0 (least significant) to 15, each at most p.</item>
/// <item>The planes, in that order. Plane b, decoded, is p bytes: bit k of byte j is bit b of coded value 8j + k
/// (coded value = the value's bits with its exponent field, bits 10..14, replaced by its code); bits past value
/// n - 1 are zero. A plane whose length is exactly p is stored verbatim; a shorter one is one LZ4 block (no frame,
/// no checksum) that decodes to exactly p bytes.</item>
/// </list>
/// <para>The payload is exactly <c>97 + sum(length)</c> bytes. Decoding rejects any other length, an unknown layout,
/// a code table that is not a permutation, a plane longer than p, a block that is malformed or does not decode to
/// exactly p bytes, and padding bits that are not zero. The encoder uses LZ4 HC level 9 (decode speed is what
/// matters, and HC blocks decode as fast as fast-mode ones).</para>
/// </remarks>
internal sealed class Lz4Codec : KvSectionCodec
{
    /// <summary>The layout byte of the bitshuffled layout (the only one).</summary>
    public const byte LayoutBitshuffle = 1;

    /// <summary>Bit planes (bits per value).</summary>
    public const int Planes = 16;

    /// <summary>Exponent codes (fp16 has a 5-bit exponent).</summary>
    public const int Exponents = 32;

    /// <summary>The bytes before the planes: layout, exponent codes, stored plane lengths.</summary>
    public const int HeaderLength = 1 + Exponents + (Planes * sizeof(uint));

    // Encoding happens once per chunk and decoding on every load, so the ratio of HC is worth its encode time.
    private const LZ4Level Level = LZ4Level.L09_HC;

    // Scratch (values padded to 32, plus 16 planes) must fit one pooled int-indexed buffer.
    private const long MaxValues = (int.MaxValue / 4) - 64;

    private const ushort ExponentMask = 0x7C00;

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
    public override long MaxEncodedLength(in KvSectionShape shape) => HeaderLength + (Planes * PlaneLength(shape.ValueCount));

    /// <summary>Bytes of one decoded bit plane for <paramref name="count"/> values.</summary>
    public static long PlaneLength(long count) => (count + 7) / 8;

    // Plane scratch is padded to whole 32-value groups (4 bytes per plane).
    private static int PaddedPlaneLength(int count) => ((count + 31) / 32) * 4;

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
        var max = MaxEncodedLength(shape);
        if (destination.Length < max)
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes; MaxEncodedLength is {max}.", nameof(destination));
        }

        var bits = MemoryMarshal.Cast<Half, ushort>(values);
        Span<int> counts = stackalloc int[Exponents];
        counts.Clear();
        foreach (var v in bits)
        {
            counts[(v & ExponentMask) >> 10]++;
        }

        // Codes by descending frequency, ties by exponent: deterministic.
        Span<byte> code = stackalloc byte[Exponents];
        Span<byte> order = stackalloc byte[Exponents];
        for (var e = 0; e < Exponents; e++)
        {
            order[e] = (byte)e;
        }

        for (var i = 1; i < Exponents; i++)
        {
            var e = order[i];
            var j = i - 1;
            while (j >= 0 && counts[order[j]] < counts[e])
            {
                order[j + 1] = order[j];
                j--;
            }

            order[j + 1] = e;
        }

        for (var r = 0; r < Exponents; r++)
        {
            code[order[r]] = (byte)r;
        }

        var p = (int)PlaneLength(n);
        var padded = PaddedPlaneLength(n);
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(1, (2 * padded * 8) + (Planes * padded)));
        try
        {
            var coded = MemoryMarshal.Cast<byte, ushort>(rented.AsSpan(0, 2 * padded * 8));
            Recode(bits, code, coded[..n]);
            coded[n..].Clear();
            var planes = rented.AsSpan(2 * padded * 8, Planes * padded);
            Shuffle(coded, planes, padded);
            destination[0] = LayoutBitshuffle;
            code.CopyTo(destination[1..]);
            var offset = HeaderLength;
            for (var b = 0; b < Planes; b++)
            {
                var length = EncodePlane(planes.Slice(b * padded, p), destination[offset..]);
                BinaryPrimitives.WriteUInt32LittleEndian(destination[(1 + Exponents + (b * sizeof(uint)))..], (uint)length);
                offset += length;
            }

            return new KvSectionEncoding(offset, 0);
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

        if (payload[0] != LayoutBitshuffle)
        {
            throw new KvCodecException($"An lz4 section has layout {payload[0]}; only {LayoutBitshuffle} is known.");
        }

        Span<byte> exponent = stackalloc byte[Exponents];
        exponent.Fill(0xFF);
        var code = payload.Slice(1, Exponents);
        for (var e = 0; e < Exponents; e++)
        {
            var c = code[e];
            if (c >= Exponents || exponent[c] != 0xFF)
            {
                throw new KvCodecException("The exponent codes of an lz4 section are not a permutation of 0..31.");
            }

            exponent[c] = (byte)e;
        }

        var p = (int)PlaneLength(n);
        long total = HeaderLength;
        Span<int> lengths = stackalloc int[Planes];
        for (var b = 0; b < Planes; b++)
        {
            var length = BinaryPrimitives.ReadUInt32LittleEndian(payload[(1 + Exponents + (b * sizeof(uint)))..]);
            if (length > (uint)p)
            {
                throw new KvCodecException($"An lz4 section of {n} values declares bit plane {b} of {length} bytes; a plane is at most {p}.");
            }

            lengths[b] = (int)length;
            total += length;
        }

        if (payload.Length != total)
        {
            throw new KvCodecException($"An lz4 section declares {total} bytes; its payload has {payload.Length}.");
        }

        var padded = PaddedPlaneLength(n);
        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(1, Planes * padded));
        try
        {
            var planes = rented.AsSpan(0, Planes * padded);
            var offset = HeaderLength;
            for (var b = 0; b < Planes; b++)
            {
                var plane = planes.Slice(b * padded, padded);
                var stored = payload.Slice(offset, lengths[b]);
                if (lengths[b] == p)
                {
                    stored.CopyTo(plane);
                }
                else
                {
                    DecodePlane(stored, plane[..p], b);
                }

                if ((n & 7) != 0 && (plane[p - 1] >> (n & 7)) != 0)
                {
                    throw new KvCodecException($"Bit plane {b} of an lz4 section has bits set past its last value.");
                }

                plane[p..].Clear();
                offset += lengths[b];
            }

            var output = MemoryMarshal.Cast<Half, ushort>(destination[..n]);
            Unshuffle(planes, padded, output);
            Recode(output, exponent, output);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Replaces every value's exponent field e by <paramref name="map"/>[e] (in place allowed).</summary>
    internal static void Recode(ReadOnlySpan<ushort> source, ReadOnlySpan<byte> map, Span<ushort> destination)
    {
        // Precomputed field values: one table load per value, no branch.
        Span<ushort> field = stackalloc ushort[Exponents];
        for (var e = 0; e < Exponents; e++)
        {
            field[e] = (ushort)(map[e] << 10);
        }

        var n = source.Length;
        destination = destination[..n];
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        ref var table = ref MemoryMarshal.GetReference(field);
        for (var i = 0; i < n; i++)
        {
            var v = Unsafe.Add(ref src, i);

            // The index is at most 31: the field has 5 bits.
            Unsafe.Add(ref dst, i) = (ushort)((v & ~ExponentMask) | Unsafe.Add(ref table, (v & ExponentMask) >> 10));
        }
    }

    /// <summary>
    /// Bit-transposes values (a multiple of 32, zero-padded) into 16 planes of <paramref name="planeLength"/> bytes:
    /// bit k of plane b's byte j is bit b of value 8j + k.
    /// </summary>
    internal static void Shuffle(ReadOnlySpan<ushort> values, Span<byte> planes, int planeLength)
    {
        var groups = planeLength / 4;
        if (values.Length < groups * 32 || planes.Length < Planes * planeLength)
        {
            throw new ArgumentException("The scratch does not cover whole 32-value groups.", nameof(values));
        }

        ref var src = ref MemoryMarshal.GetReference(values);
        if (Vector256.IsHardwareAccelerated)
        {
            for (var g = 0; g < groups; g++)
            {
                var a = Vector256.LoadUnsafe(ref src, (nuint)(g * 32));
                var c = Vector256.LoadUnsafe(ref src, (nuint)((g * 32) + 16));
                var lo = Vector256.Narrow(a, c);
                var hi = Vector256.Narrow(Vector256.ShiftRightLogical(a, 8), Vector256.ShiftRightLogical(c, 8));
                for (var b = 0; b < 8; b++)
                {
                    // Shifting bit b to each byte's top makes the sign mask the plane's 32 bits.
                    BinaryPrimitives.WriteUInt32LittleEndian(planes[((b * planeLength) + (g * 4))..], Vector256.ExtractMostSignificantBits(Vector256.ShiftLeft(lo, 7 - b)));
                    BinaryPrimitives.WriteUInt32LittleEndian(planes[(((b + 8) * planeLength) + (g * 4))..], Vector256.ExtractMostSignificantBits(Vector256.ShiftLeft(hi, 7 - b)));
                }
            }

            return;
        }

        for (var g = 0; g < groups; g++)
        {
            for (var b = 0; b < Planes; b++)
            {
                uint word = 0;
                for (var k = 0; k < 32; k++)
                {
                    word |= (uint)((Unsafe.Add(ref src, (g * 32) + k) >> b) & 1) << k;
                }

                BinaryPrimitives.WriteUInt32LittleEndian(planes[((b * planeLength) + (g * 4))..], word);
            }
        }
    }

    /// <summary>The inverse of <see cref="Shuffle"/> for the first <paramref name="values"/>.Length values.</summary>
    internal static void Unshuffle(ReadOnlySpan<byte> planes, int planeLength, Span<ushort> values)
    {
        var n = values.Length;
        if (planes.Length < Planes * planeLength || planeLength < ((n + 31) / 32) * 4)
        {
            throw new ArgumentException("The planes do not cover the values.", nameof(planes));
        }

        ref var dst = ref MemoryMarshal.GetReference(values);
        ref var src = ref MemoryMarshal.GetReference(planes);
        var i = 0;
        if (Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            // Lane k tests bit k of a plane's 16-bit word and contributes the plane's bit to value k.
            var select = Vector256.Create((ushort)1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
            for (; i <= n - 16; i += 16)
            {
                var acc = Vector256<ushort>.Zero;
                ref var at = ref Unsafe.Add(ref src, i / 8);
                for (var b = 0; b < Planes; b++)
                {
                    // In range: i + 16 <= n, so byte i / 8 + 1 of every plane is inside the checked length.
                    var word = Vector256.Create(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref at, b * planeLength)));
                    acc |= Vector256.Equals(word & select, select) & Vector256.Create((ushort)(1 << b));
                }

                acc.StoreUnsafe(ref dst, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            var v = 0;
            for (var b = 0; b < Planes; b++)
            {
                v |= ((planes[(b * planeLength) + (i >> 3)] >> (i & 7)) & 1) << b;
            }

            Unsafe.Add(ref dst, i) = (ushort)v;
        }
    }

    /// <summary>Writes a plane as an LZ4 block when that is shorter than the plane, else verbatim; returns its length.</summary>
    private static int EncodePlane(ReadOnlySpan<byte> plane, Span<byte> destination)
    {
        var n = plane.Length;
        if (n > 0)
        {
            // A block may only be used when it is strictly shorter than the plane (the length tells the two apart).
            // Sign and mantissa planes are noise: a fast-mode pass that gains under 1/32 skips the slow HC pass.
            var fast = LZ4Codec.Encode(plane, destination[..(n - 1)], LZ4Level.L00_FAST);
            if (fast > 0 && fast < n - (n / 32))
            {
                var written = LZ4Codec.Encode(plane, destination[..(n - 1)], Level);
                if (written > 0 && written <= fast)
                {
                    return written;
                }

                return LZ4Codec.Encode(plane, destination[..(n - 1)], LZ4Level.L00_FAST);
            }
        }

        plane.CopyTo(destination);
        return n;
    }

    private static void DecodePlane(ReadOnlySpan<byte> block, Span<byte> target, int plane)
    {
        // K4os decodes with bounds checks on both sides (LZ4_decompress_safe) and returns a negative length for a
        // malformed block, including one that would write past the exactly-sized target.
        var decoded = LZ4Codec.Decode(block, target);
        if (decoded != target.Length)
        {
            throw new KvCodecException(decoded < 0
                ? $"Bit plane {plane} of an lz4 section is not a valid LZ4 block for {target.Length} bytes."
                : $"Bit plane {plane} of an lz4 section decodes to {decoded} bytes; the section needs {target.Length}.");
        }
    }
}
