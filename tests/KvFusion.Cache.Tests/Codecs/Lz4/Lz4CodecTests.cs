using System.Buffers.Binary;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.Lz4;
using static KvFusion.Cache.Tests.Codecs.CodecTestData;

namespace KvFusion.Cache.Tests.Codecs.Lz4;

public sealed class Lz4CodecTests
{
    private static void AssertBitExact(ReadOnlySpan<Half> expected, ReadOnlySpan<Half> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (BitConverter.HalfToUInt16Bits(expected[i]) != BitConverter.HalfToUInt16Bits(actual[i]))
                Assert.Fail($"value {i}: 0x{BitConverter.HalfToUInt16Bits(expected[i]):X4} decoded as 0x{BitConverter.HalfToUInt16Bits(actual[i]):X4}");
        }
    }

    private static byte[] AssertRoundTrip(Half[] values, in KvSectionShape shape)
    {
        var (payload, decoded) = RoundTrip(KvCodecSpec.Lz4, values, shape);
        AssertBitExact(values, decoded);
        Assert.True(payload.Length <= Lz4Codec.Instance.MaxEncodedLength(shape));
        return payload;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 1, 3)]
    [InlineData(2, 7, 5)]
    [InlineData(4, 33, 32)]
    [InlineData(8, 257, 64)]
    public void Any_bit_patterns_round_trip_exactly_including_NaN_and_infinity(int heads, int tokens, int width)
    {
        var shape = Shape(heads, tokens, width);
        var values = RandomBits(new Random(heads * 1000 + tokens), (int)shape.ValueCount);
        values[0] = Half.NaN;
        if (values.Length > 3)
        {
            values[1] = Half.PositiveInfinity;
            values[2] = Half.NegativeInfinity;
            values[3] = BitConverter.UInt16BitsToHalf(0xFE01);
        }
        AssertRoundTrip(values, shape);
    }

    [Fact]
    public void Every_length_up_to_200_round_trips_through_the_vector_and_scalar_paths()
    {
        var random = new Random(3);
        for (var n = 0; n <= 200; n++)
        {
            var shape = Shape(1, 1, n);
            AssertRoundTrip(RandomBits(random, n), shape);
            var smooth = new Half[n];
            for (var i = 0; i < n; i++)
                smooth[i] = (Half)Math.Sin(i * 0.01);
            AssertRoundTrip(smooth, shape);
        }
    }

    [Fact]
    public void Empty_section_is_the_header_alone()
    {
        var payload = AssertRoundTrip([], Shape(4, 0, 32));
        Assert.Equal(Lz4Codec.HeaderLength, payload.Length);
    }

    [Fact]
    public void All_zero_section_compresses_to_almost_nothing()
    {
        var shape = Shape(4, 512, 64);
        var values = new Half[shape.ValueCount];
        var payload = AssertRoundTrip(values, shape);
        Assert.True(payload.Length < values.Length / 100, $"{payload.Length} bytes");
    }

    [Fact]
    public void Smooth_KV_like_sections_compress_and_noise_is_stored_without_growing()
    {
        var shape = Shape(4, 256, 64);
        var smooth = new Half[shape.ValueCount];
        for (var i = 0; i < smooth.Length; i++)
            smooth[i] = (Half)(Math.Round(Math.Sin(i * 0.001) * 64) / 64);
        Assert.True(AssertRoundTrip(smooth, shape).Length < smooth.Length);

        AssertRoundTrip(KvLike(new Random(5), shape), shape);

        var noise = RandomBits(new Random(6), (int)shape.ValueCount);
        var payload = AssertRoundTrip(noise, shape);
        Assert.True(payload.Length <= Lz4Codec.HeaderLength + (2 * noise.Length));
        Assert.Equal(Lz4Codec.Instance.MaxEncodedLength(shape), payload.Length);
    }

    [Fact]
    public void Shuffle_and_unshuffle_match_the_bit_plane_definition()
    {
        var random = new Random(8);
        for (var n = 0; n < 200; n++)
        {
            var padded = ((n + 31) / 32) * 4;
            var values = new ushort[padded * 8];
            for (var i = 0; i < n; i++)
                values[i] = (ushort)random.Next(65536);
            var planes = new byte[Lz4Codec.Planes * padded];
            Lz4Codec.Shuffle(values, planes, padded);
            for (var b = 0; b < Lz4Codec.Planes; b++)
            {
                for (var i = 0; i < padded * 8; i++)
                    Assert.Equal((values[i] >> b) & 1, (planes[(b * padded) + (i >> 3)] >> (i & 7)) & 1);
            }
            var back = new ushort[n];
            Lz4Codec.Unshuffle(planes, padded, back);
            Assert.Equal(values.AsSpan(0, n).ToArray(), back);
        }
    }

    [Fact]
    public void Denormals_zeros_and_special_patterns_round_trip_with_odd_token_counts()
    {
        ushort[] special = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7C01, 0x7E00, 0xFFFF, 0x7FFF, 0x3C00];
        foreach (var tokens in new[] { 1, 3, 17, 31, 33, 255 })
        {
            var shape = Shape(3, tokens, 7);
            var values = new Half[shape.ValueCount];
            var random = new Random(tokens);
            for (var i = 0; i < values.Length; i++)
                values[i] = BitConverter.UInt16BitsToHalf(special[random.Next(special.Length)]);
            AssertRoundTrip(values, shape);
        }
    }

    private static (int[] Lengths, int PlaneLength) PlaneLengths(byte[] payload, long count)
    {
        var lengths = new int[Lz4Codec.Planes];
        for (var b = 0; b < lengths.Length; b++)
            lengths[b] = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(1 + Lz4Codec.Exponents + (4 * b)));
        return (lengths, (int)Lz4Codec.PlaneLength(count));
    }

    [Fact]
    public void The_payload_follows_the_documented_layout()
    {
        var shape = Shape(2, 63, 31);
        var values = KvLike(new Random(9), shape);
        var payload = AssertRoundTrip(values, shape);
        var n = (int)shape.ValueCount;
        Assert.Equal(Lz4Codec.LayoutBitshuffle, payload[0]);
        var code = payload.AsSpan(1, Lz4Codec.Exponents).ToArray();
        Assert.Equal(Enumerable.Range(0, 32).Select(x => (byte)x), code.Order());
        var (lengths, p) = PlaneLengths(payload, n);
        Assert.Equal(payload.Length, Lz4Codec.HeaderLength + lengths.Sum());
        Assert.All(lengths, l => Assert.InRange(l, 0, p));

        // Every plane stored verbatim (length p), built from the definition, decodes to the values.
        var planes = new byte[Lz4Codec.Planes * p];
        for (var i = 0; i < n; i++)
        {
            var v = BitConverter.HalfToUInt16Bits(values[i]);
            var coded = (v & 0x83FF) | (code[(v >> 10) & 31] << 10);
            for (var b = 0; b < Lz4Codec.Planes; b++)
                planes[(b * p) + (i >> 3)] |= (byte)(((coded >> b) & 1) << (i & 7));
        }
        var verbatim = new byte[Lz4Codec.HeaderLength + planes.Length];
        verbatim[0] = Lz4Codec.LayoutBitshuffle;
        code.CopyTo(verbatim, 1);
        for (var b = 0; b < Lz4Codec.Planes; b++)
            BinaryPrimitives.WriteUInt32LittleEndian(verbatim.AsSpan(1 + Lz4Codec.Exponents + (4 * b)), (uint)p);
        planes.CopyTo(verbatim, Lz4Codec.HeaderLength);
        var decoded = new Half[n];
        Lz4Codec.Instance.Decode(verbatim, shape, decoded);
        AssertBitExact(values, decoded);

        // A padding bit past the last value, an unknown layout, or codes that are not a permutation are corrupt.
        var padded = (byte[])verbatim.Clone();
        padded[Lz4Codec.HeaderLength + p - 1] |= 0x80;
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(padded, shape, decoded));
        foreach (var layout in new byte[] { 0, 2, 255 })
        {
            var copy = (byte[])verbatim.Clone();
            copy[0] = layout;
            Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(copy, shape, decoded));
        }
        var duplicate = (byte[])verbatim.Clone();
        duplicate[2] = duplicate[1];
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(duplicate, shape, decoded));
        var outOfRange = (byte[])verbatim.Clone();
        outOfRange[1] = 32;
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(outOfRange, shape, decoded));
    }

    [Fact]
    public void Truncated_and_extended_payloads_are_rejected()
    {
        var shape = Shape(2, 100, 32);
        var values = KvLike(new Random(10), shape);
        var payload = AssertRoundTrip(values, shape);
        var decoded = new Half[shape.ValueCount];
        for (var length = 0; length < payload.Length; length++)
            Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(payload.AsSpan(0, length), shape, decoded));
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode([.. payload, 0], shape, decoded));
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(payload, Shape(2, 101, 32), new Half[2 * 101 * 32]));
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(payload, Shape(2, 99, 32), decoded));
        Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(payload, Shape(-2, -100, 32), decoded));
    }

    [Fact]
    public void Plane_lengths_that_lie_are_rejected()
    {
        var shape = Shape(2, 100, 32);
        var n = (int)shape.ValueCount;
        var payload = AssertRoundTrip(KvLike(new Random(11), shape), shape);
        var decoded = new Half[n];
        var (lengths, p) = PlaneLengths(payload, n);
        var compressed = Array.FindIndex(lengths, l => l < p);
        Assert.True(compressed >= 0);
        var next = (compressed + 1) % Lz4Codec.Planes;
        foreach (var (first, second) in new (uint, uint)[] { ((uint)lengths[compressed] + 1, (uint)lengths[next] - 1), ((uint)lengths[compressed] - 1, (uint)lengths[next] + 1), ((uint)p + 1, 0), (uint.MaxValue, (uint)lengths[next]), (0x8000_0000, 0x8000_0000) })
        {
            var copy = (byte[])payload.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(1 + Lz4Codec.Exponents + (4 * compressed)), first);
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(1 + Lz4Codec.Exponents + (4 * next)), second);
            Assert.Throws<KvCodecException>(() => Lz4Codec.Instance.Decode(copy, shape, decoded));
        }
    }

    [Fact]
    public void Ten_thousand_mutations_and_random_payloads_only_ever_raise_KvCodecException()
    {
        var random = new Random(12);
        var shape = Shape(2, 64, 32);
        var values = KvLike(random, shape);
        var payload = AssertRoundTrip(values, shape);
        var decoded = new Half[shape.ValueCount];
        var rejected = 0;
        for (var m = 0; m < 10_000; m++)
        {
            byte[] copy;
            if (m % 10 == 9)
            {
                copy = new byte[random.Next(0, 2 * payload.Length)];
                random.NextBytes(copy);
                var p = (int)Lz4Codec.PlaneLength(shape.ValueCount);
                if (copy.Length >= Lz4Codec.HeaderLength)
                {
                    // A consistent header (layout, a permutation, lengths that add up) gets the garbage into the LZ4 decoder.
                    copy[0] = Lz4Codec.LayoutBitshuffle;
                    var codes = Enumerable.Range(0, Lz4Codec.Exponents).Select(x => (byte)x).ToArray();
                    random.Shuffle(codes);
                    codes.CopyTo(copy, 1);
                    var left = copy.Length - Lz4Codec.HeaderLength;
                    for (var b = 0; b < Lz4Codec.Planes; b++)
                    {
                        var length = b == Lz4Codec.Planes - 1 ? left : random.Next(0, Math.Min(p, left) + 1);
                        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(1 + Lz4Codec.Exponents + (4 * b)), (uint)length);
                        left -= length;
                    }
                }
            }
            else
            {
                copy = (byte[])payload.Clone();
                for (var k = random.Next(1, 4); k > 0; k--)
                    copy[random.Next(0, copy.Length)] ^= (byte)random.Next(1, 256);
            }
            try
            {
                Lz4Codec.Instance.Decode(copy, shape, decoded);
            }
            catch (KvCodecException)
            {
                rejected++;
            }
        }
        Assert.True(rejected > 0);
    }

    [Fact]
    public void The_codec_has_no_parameters_and_rejects_some()
    {
        var entry = new KvEntryShape(2, 4, 32, 10);
        var codec = KvCodecFactory.ForEncoding(KvCodecSpec.Lz4, entry);
        Assert.Same(Lz4Codec.Instance, codec);
        Assert.Equal(0, codec.ParametersLength);
        Assert.Equal(KvCodecSpec.Lz4, codec.Spec);
        Assert.Same(codec, KvCodecFactory.ForDecoding(KvCodecSpec.Lz4, [], entry));
        Assert.Throws<KvCodecException>(() => KvCodecFactory.ForDecoding(KvCodecSpec.Lz4, [0], entry));
    }

    [Fact]
    public void Sections_encode_and_decode_in_parallel_with_one_instance()
    {
        var shape = Shape(4, 128, 32);
        var sections = Enumerable.Range(0, 32).Select(s => KvLike(new Random(s), shape)).ToArray();
        Parallel.For(0, sections.Length, s => AssertRoundTrip(sections[s], shape));
    }
}
