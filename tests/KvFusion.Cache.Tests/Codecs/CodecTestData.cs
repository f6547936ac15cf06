using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Tests.Codecs;

/// <summary>Sections of values and codec round trips shared by the codec tests.</summary>
internal static class CodecTestData
{
    /// <summary>A K section of the given shape.</summary>
    public static KvSectionShape Shape(int heads, int tokens, int width, int layer = 0) => new(layer, KvSectionKind.Keys, heads, tokens, width);

    /// <summary>Any 16-bit patterns, NaNs and infinities included.</summary>
    public static Half[] RandomBits(Random random, int count)
    {
        var values = new Half[count];
        for (var i = 0; i < count; i++)
            values[i] = BitConverter.UInt16BitsToHalf((ushort)random.Next(65536));
        return values;
    }

    /// <summary>KV-like values: per-channel magnitude (a few outlier channels) times Gaussian noise, smooth across tokens.</summary>
    public static Half[] KvLike(Random random, in KvSectionShape shape, double magnitude = 1)
    {
        var values = new Half[shape.ValueCount];
        var channelScale = new double[shape.Channels];
        for (var c = 0; c < channelScale.Length; c++)
            channelScale[c] = magnitude * (random.Next(16) == 0 ? 8 : 0.5 + random.NextDouble());
        for (var h = 0; h < shape.Heads; h++)
        {
            for (var w = 0; w < shape.Width; w++)
            {
                var walk = Gaussian(random);
                for (var t = 0; t < shape.Tokens; t++)
                {
                    walk = (0.9 * walk) + (0.45 * Gaussian(random));
                    values[(((h * shape.Tokens) + t) * shape.Width) + w] = (Half)(walk * channelScale[(h * shape.Width) + w]);
                }
            }
        }
        return values;
    }

    /// <summary>Encodes with the factory's codec and decodes with the one rebuilt from its parameters.</summary>
    public static (byte[] Payload, Half[] Decoded) RoundTrip(KvCodecSpec spec, ReadOnlySpan<Half> values, in KvSectionShape shape)
    {
        var entry = new KvEntryShape(shape.Layer + 1, shape.Heads, shape.Width, shape.Tokens);
        var encoder = KvCodecFactory.ForEncoding(spec, entry);
        var parameters = new byte[encoder.ParametersLength];
        encoder.WriteParameters(parameters);
        var buffer = new byte[encoder.MaxEncodedLength(shape)];
        var encoding = encoder.Encode(values, shape, buffer);
        Assert.InRange(encoding.BytesWritten, 0, buffer.Length);
        var payload = buffer.AsSpan(0, encoding.BytesWritten).ToArray();
        var decoder = KvCodecFactory.ForDecoding(spec, parameters, entry);
        var decoded = new Half[shape.ValueCount];
        decoder.Decode(payload, shape, decoded);
        return (payload, decoded);
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
