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
    }

    [Fact]
    public void Split_and_merge_match_the_byte_definition()
    {
        var random = new Random(8);
        for (var n = 0; n < 100; n++)
        {
            var values = new ushort[n];
            for (var i = 0; i < n; i++)
                values[i] = (ushort)random.Next(65536);
            var low = new byte[n];
            var high = new byte[n];
            Lz4Codec.Split(values, low, high);
            for (var i = 0; i < n; i++)
            {
                Assert.Equal((byte)values[i], low[i]);
                Assert.Equal((byte)(values[i] >> 8), high[i]);
            }
            var merged = new ushort[n];
            Lz4Codec.Merge(low, high, merged);
            Assert.Equal(values, merged);
        }
    }

    [Fact]
    public void The_payload_follows_the_documented_layout()
    {
        var shape = Shape(2, 64, 32);
        var values = KvLike(new Random(9), shape);
        var payload = AssertRoundTrip(values, shape);
        var n = (int)shape.ValueCount;
        var lowLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload);
        var highLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
        Assert.Equal(payload.Length, Lz4Codec.HeaderLength + lowLength + highLength);
        Assert.InRange(lowLength, 0, n);
        Assert.InRange(highLength, 0, n);

        // A plane stored verbatim (length n) is taken as the raw bytes.
        var bits = new ushort[n];
        for (var i = 0; i < n; i++)
            bits[i] = BitConverter.HalfToUInt16Bits(values[i]);
        var low = new byte[n];
        var high = new byte[n];
        Lz4Codec.Split(bits, low, high);
        byte[] verbatim = [.. new byte[8], .. low, .. high];
        BinaryPrimitives.WriteUInt32LittleEndian(verbatim, (uint)n);
        BinaryPrimitives.WriteUInt32LittleEndian(verbatim.AsSpan(4), (uint)n);
        var decoded = new Half[n];
        Lz4Codec.Instance.Decode(verbatim, shape, decoded);
        AssertBitExact(values, decoded);
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
        var lowLength = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        var highLength = BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
        foreach (var (lo, hi) in new (uint, uint)[] { (lowLength + 1, highLength - 1), (lowLength - 1, highLength + 1), ((uint)n + 1, 0), (uint.MaxValue, highLength), (lowLength, uint.MaxValue), (0x8000_0000, 0x8000_0000) })
        {
            var copy = (byte[])payload.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(copy, lo);
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(4), hi);
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
                if (copy.Length >= 8)
                {
                    // Consistent lengths get the garbage past the header into the LZ4 decoder.
                    var lo = random.Next(0, copy.Length - 7);
                    BinaryPrimitives.WriteUInt32LittleEndian(copy, (uint)lo);
                    BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(4), (uint)(copy.Length - 8 - lo));
                }
            }
            else
            {
                copy = (byte[])payload.Clone();
                for (var k = random.Next(1, 4); k > 0; k--)
                    copy[random.Next(8, copy.Length)] ^= (byte)random.Next(1, 256);
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
