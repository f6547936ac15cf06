using System.Buffers.Binary;
using System.Runtime.Intrinsics;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.Fp8;
using static KvFusion.Cache.Tests.Codecs.CodecTestData;

namespace KvFusion.Cache.Tests.Codecs.Fp8;

public sealed class Fp8CodecTests
{
    /// <summary>Round-trips through the factory and checks every element against the stated bound.</summary>
    private static (byte[] Payload, Half[] Decoded) AssertWithinBound(Half[] values, in KvSectionShape shape)
    {
        var (payload, decoded) = RoundTrip(KvCodecSpec.Fp8, values, shape);
        Assert.Equal(shape.Tokens * 4 + shape.ValueCount, payload.Length);
        for (var t = 0; t < shape.Tokens; t++)
        {
            var max = 0f;
            for (var h = 0; h < shape.Heads; h++)
            {
                for (var w = 0; w < shape.Width; w++)
                    max = Math.Max(max, Math.Abs((float)values[Index(shape, h, t, w)]));
            }
            var scale = Fp8Codec.TokenScale(max);
            Assert.Equal(scale, BinaryPrimitives.ReadSingleLittleEndian(payload.AsSpan(t * 4)));
            for (var h = 0; h < shape.Heads; h++)
            {
                for (var w = 0; w < shape.Width; w++)
                {
                    var i = Index(shape, h, t, w);
                    var x = (float)values[i];
                    var error = Math.Abs((double)(float)decoded[i] - x);
                    var bound = Fp8Codec.ErrorBound(x, scale);
                    if (!(error <= bound))
                        Assert.Fail($"token {t} head {h} channel {w}: {x} decoded as {(float)decoded[i]}, error {error} above the bound {bound} (scale {scale})");
                }
            }
        }
        return (payload, decoded);
    }

    private static int Index(in KvSectionShape shape, int h, int t, int w) => (((h * shape.Tokens) + t) * shape.Width) + w;

    [Fact]
    public void The_code_table_is_e4m3fn()
    {
        Assert.Equal(0f, E4M3.Values[0x00]);
        Assert.True(float.IsNegative(E4M3.Values[0x80]) && E4M3.Values[0x80] == 0);
        Assert.Equal(448f, E4M3.Values[0x7E]);
        Assert.Equal(-448f, E4M3.Values[0xFE]);
        Assert.Equal(1f, E4M3.Values[0x38]);
        Assert.Equal(1f / 64, E4M3.Values[0x08]);
        Assert.Equal(1f / 512, E4M3.Values[0x01]);
        Assert.Equal(7f / 512, E4M3.Values[0x07]);
        Assert.True(float.IsNaN(E4M3.Values[0x7F]) && float.IsNaN(E4M3.Values[0xFF]));
        for (var c = 0; c < 0x7E; c++)
            Assert.True(E4M3.Values[c] < E4M3.Values[c + 1]);
    }

    [Fact]
    public void Encoding_rounds_to_nearest_even_and_saturates_and_the_vector_form_agrees()
    {
        // Every code maps to itself; midpoints go to the even neighbour; beyond 448 saturates.
        var inputs = new List<float>();
        for (var c = 0; c < 0x7E; c++)
        {
            var a = E4M3.Values[c];
            var b = E4M3.Values[c + 1];
            Assert.Equal((byte)c, E4M3.FromSingle(a));
            Assert.Equal((byte)(c | 0x80), E4M3.FromSingle(-a == 0 ? -0f : -a));
            var mid = (a + b) / 2;
            Assert.Equal((byte)((c & 1) == 0 ? c : c + 1), E4M3.FromSingle(mid));
            Assert.Equal((byte)c, E4M3.FromSingle(BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(mid) - 1)));
            Assert.Equal((byte)(c + 1), E4M3.FromSingle(BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(mid) + 1)));
            inputs.AddRange([a, -a, mid, -mid, (a * 0.7f) + (b * 0.3f)]);
        }
        Assert.Equal(0x7E, E4M3.FromSingle(448f));
        Assert.Equal(0x7E, E4M3.FromSingle(464f));
        Assert.Equal(0x7E, E4M3.FromSingle(1e30f));
        Assert.Equal(0xFE, E4M3.FromSingle(-500f));
        Assert.Equal(0x00, E4M3.FromSingle(1f / 1024));
        Assert.Equal(0x02, E4M3.FromSingle(3f / 1024));
        inputs.AddRange([448f, 464f, 1e30f, -500f, 1e-30f]);
        while (inputs.Count % 8 != 0)
            inputs.Add(0);
        for (var i = 0; i < inputs.Count; i += 8)
        {
            var codes = E4M3.FromSingle(Vector256.Create(inputs.ToArray(), i));
            for (var k = 0; k < 8; k++)
                Assert.Equal(E4M3.FromSingle(inputs[i + k]), (byte)codes.GetElement(k));
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 1.0)]
    [InlineData(1, 3, 7, 1.0)]
    [InlineData(4, 64, 32, 1.0)]
    [InlineData(2, 33, 48, 0.01)]
    [InlineData(8, 17, 128, 100.0)]
    [InlineData(4, 20, 64, 1e-4)]
    [InlineData(4, 20, 64, 1000.0)]
    public void Every_element_is_within_the_stated_bound(int heads, int tokens, int width, double magnitude)
    {
        var shape = Shape(heads, tokens, width);
        AssertWithinBound(KvLike(new Random(heads + tokens + width), shape, magnitude), shape);
    }

    [Fact]
    public void Extreme_magnitudes_stay_within_the_bound()
    {
        var shape = Shape(2, 6, 40);
        var values = new Half[shape.ValueCount];
        var random = new Random(21);
        for (var i = 0; i < values.Length; i++)
            values[i] = BitConverter.UInt16BitsToHalf((ushort)(random.Next(0x7C00) | (random.Next(2) << 15)));
        // Token 0 spans fp16's maximum and its subnormals; token 1 holds subnormals only; token 2 one huge value.
        values[Index(shape, 0, 0, 0)] = Half.MaxValue;
        values[Index(shape, 1, 0, 5)] = Half.Epsilon;
        for (var h = 0; h < 2; h++)
        {
            for (var w = 0; w < 40; w++)
            {
                values[Index(shape, h, 1, w)] = BitConverter.UInt16BitsToHalf((ushort)random.Next(0x0400));
                values[Index(shape, h, 2, w)] = (Half)(w * 1e-3);
            }
        }
        values[Index(shape, 1, 2, 3)] = -Half.MaxValue;
        AssertWithinBound(values, shape);
    }

    [Fact]
    public void Values_on_the_fp8_grid_with_a_power_of_two_scale_are_exact()
    {
        var shape = Shape(3, 5, 85);
        var values = new Half[shape.ValueCount];
        for (var t = 0; t < shape.Tokens; t++)
        {
            var scale = MathF.ScaleB(1, t - 2);
            for (var h = 0; h < shape.Heads; h++)
            {
                for (var w = 0; w < shape.Width; w++)
                {
                    var code = (byte)((w + (h * 85)) % 0x7F);
                    values[Index(shape, h, t, w)] = (Half)(E4M3.Values[(h & 1) == 0 ? code : code | 0x80] * scale);
                }
            }
            values[Index(shape, 0, t, 0)] = (Half)(448 * scale);
        }
        var (_, decoded) = AssertWithinBound(values, shape);
        Assert.Equal(values.Select(BitConverter.HalfToUInt16Bits), decoded.Select(BitConverter.HalfToUInt16Bits));
    }

    [Fact]
    public void All_zero_tokens_get_scale_zero_and_keep_their_zeros_signs()
    {
        var shape = Shape(2, 3, 33);
        var values = KvLike(new Random(4), shape);
        for (var h = 0; h < 2; h++)
        {
            for (var w = 0; w < 33; w++)
                values[Index(shape, h, 1, w)] = w % 2 == 0 ? Half.Zero : Half.NegativeZero;
        }
        var (payload, decoded) = AssertWithinBound(values, shape);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4)));
        for (var h = 0; h < 2; h++)
        {
            for (var w = 0; w < 33; w++)
                Assert.Equal(BitConverter.HalfToUInt16Bits(values[Index(shape, h, 1, w)]), BitConverter.HalfToUInt16Bits(decoded[Index(shape, h, 1, w)]));
        }

        var zeros = new Half[shape.ValueCount];
        Assert.All(RoundTrip(KvCodecSpec.Fp8, zeros, shape).Decoded, v => Assert.Equal(0, BitConverter.HalfToUInt16Bits(v)));
    }

    [Fact]
    public void The_vector_decoder_agrees_with_the_table_for_every_code_and_scale()
    {
        // 256 channels per token: every code once, decoded by the vector path, against the scalar table formula.
        var shape = Shape(1, 4, 256);
        var payload = new byte[(4 * 4) + 1024];
        float[] scales = [1f, 0.0137f, Fp8Codec.MaxScale, 1e-12f];
        for (var t = 0; t < 4; t++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(t * 4), scales[t]);
            for (var c = 0; c < 256; c++)
                payload[16 + (t * 256) + c] = E4M3.IsNaN((byte)c) ? (byte)0x7E : (byte)c;
        }
        var decoded = new Half[1024];
        Fp8Codec.Instance.Decode(payload, shape, decoded);
        for (var t = 0; t < 4; t++)
        {
            for (var c = 0; c < 256; c++)
            {
                var code = payload[16 + (t * 256) + c];
                Assert.Equal(BitConverter.HalfToUInt16Bits((Half)(E4M3.Values[code] * scales[t])), BitConverter.HalfToUInt16Bits(decoded[(t * 256) + c]));
            }
        }
    }

    [Fact]
    public void Non_finite_inputs_are_rejected_at_encode()
    {
        var shape = Shape(2, 4, 40);
        foreach (var bad in new[] { Half.NaN, Half.PositiveInfinity, Half.NegativeInfinity, BitConverter.UInt16BitsToHalf(0xFC01) })
        {
            foreach (var index in new[] { 0, 39, 200, 319 })
            {
                var values = KvLike(new Random(1), shape);
                values[index] = bad;
                var buffer = new byte[Fp8Codec.Instance.MaxEncodedLength(shape)];
                var ex = Assert.Throws<ArgumentException>(() => Fp8Codec.Instance.Encode(values, shape, buffer));
                Assert.Contains("non-finite", ex.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Wrong_payload_lengths_scales_and_NaN_codes_are_rejected()
    {
        var shape = Shape(2, 10, 36);
        var (payload, _) = AssertWithinBound(KvLike(new Random(2), shape), shape);
        var decoded = new Half[shape.ValueCount];
        for (var length = 0; length < payload.Length; length += 7)
            Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(payload.AsSpan(0, length), shape, decoded));
        Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(payload.AsSpan(0, payload.Length - 1), shape, decoded));
        Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode([.. payload, 0], shape, decoded));
        Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(payload, Shape(2, 11, 36), new Half[2 * 11 * 36]));
        Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(payload, Shape(-2, 10, -36), decoded));

        foreach (var scale in new[] { float.NaN, float.PositiveInfinity, -1f, -0f, Fp8Codec.MaxScale * 1.0001f, float.MaxValue })
        {
            var copy = (byte[])payload.Clone();
            BinaryPrimitives.WriteSingleLittleEndian(copy.AsSpan(12), scale);
            Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(copy, shape, decoded));
        }

        // A NaN code anywhere: in the vector part of a row and in its scalar tail.
        foreach (var at in new[] { 0, 5, 31, 32, 35, 719 })
        {
            foreach (var code in new byte[] { 0x7F, 0xFF })
            {
                var copy = (byte[])payload.Clone();
                copy[40 + at] = code;
                Assert.Throws<KvCodecException>(() => Fp8Codec.Instance.Decode(copy, shape, decoded));
            }
        }
    }

    [Fact]
    public void Random_payloads_only_ever_raise_KvCodecException()
    {
        var random = new Random(13);
        var shape = Shape(2, 8, 32);
        var decoded = new Half[shape.ValueCount];
        for (var c = 0; c < 2_000; c++)
        {
            var garbage = new byte[c % 3 == 0 ? random.Next(0, 700) : 32 + 512];
            random.NextBytes(garbage);
            try
            {
                Fp8Codec.Instance.Decode(garbage, shape, decoded);
            }
            catch (KvCodecException)
            {
            }
        }
    }

    [Fact]
    public void The_codec_has_no_parameters_and_rejects_some()
    {
        var entry = new KvEntryShape(2, 4, 32, 10);
        var codec = KvCodecFactory.ForEncoding(KvCodecSpec.Fp8, entry);
        Assert.Same(Fp8Codec.Instance, codec);
        Assert.Equal(0, codec.ParametersLength);
        Assert.Same(codec, KvCodecFactory.ForDecoding(KvCodecSpec.Fp8, [], entry));
        Assert.Throws<KvCodecException>(() => KvCodecFactory.ForDecoding(KvCodecSpec.Fp8, [1, 2], entry));
    }

    [Fact]
    public void Sections_encode_and_decode_in_parallel_with_one_instance()
    {
        var shape = Shape(4, 128, 32);
        var sections = Enumerable.Range(0, 32).Select(s => KvLike(new Random(s), shape)).ToArray();
        Parallel.For(0, sections.Length, s => AssertWithinBound(sections[s], shape));
    }
}
