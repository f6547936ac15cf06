using KvFusion.Cache.Codecs.Entropy;

namespace KvFusion.Cache.Tests.Codecs.Entropy;

/// <summary>Symbol streams and round-trip helpers shared by the entropy coder tests.</summary>
internal static class EntropyTestData
{
    /// <summary>Symbols drawn with P(s) proportional to ratio^s over the whole byte alphabet.</summary>
    public static byte[] Geometric(Random random, int length, double ratio)
    {
        var cdf = new double[256];
        double p = 1, sum = 0;
        for (var s = 0; s < 256; s++)
        {
            sum += p;
            cdf[s] = sum;
            p *= ratio;
        }
        var data = new byte[length];
        for (var i = 0; i < length; i++)
        {
            var u = random.NextDouble() * sum;
            var idx = Array.BinarySearch(cdf, u);
            data[i] = (byte)Math.Min(255, idx >= 0 ? idx : ~idx);
        }
        return data;
    }

    /// <summary>Symbols drawn from a random distribution over a random subset of the alphabet.</summary>
    public static byte[] RandomDistribution(Random random, int length)
    {
        var alphabet = random.Next(1, 257);
        var symbols = Enumerable.Range(0, 256).Select(s => (byte)s).OrderBy(_ => random.Next()).Take(alphabet).ToArray();
        // Cubing the weights makes some distributions very skewed and leaves others near uniform.
        var weights = symbols.Select(_ => Math.Pow(random.NextDouble(), random.Next(1, 8))).ToArray();
        var cdf = new double[alphabet];
        double sum = 0;
        for (var k = 0; k < alphabet; k++)
        {
            sum += weights[k] + 1e-9;
            cdf[k] = sum;
        }
        var data = new byte[length];
        for (var i = 0; i < length; i++)
        {
            var idx = Array.BinarySearch(cdf, random.NextDouble() * sum);
            data[i] = symbols[Math.Min(alphabet - 1, idx >= 0 ? idx : ~idx)];
        }
        return data;
    }

    /// <summary>Encodes with a table of the data's own histogram, asserts the exact round trip, returns the stream.</summary>
    public static byte[] AssertRoundTrip(ReadOnlySpan<byte> data, int scaleBits = SymbolFrequencies.DefaultScaleBits)
    {
        var table = data.IsEmpty ? SymbolFrequencies.FromCounts([1], scaleBits) : SymbolFrequencies.FromSymbols(data, scaleBits);
        return AssertRoundTrip(data, table);
    }

    /// <summary>Encodes with <paramref name="table"/>, asserts the exact round trip, returns the stream.</summary>
    public static byte[] AssertRoundTrip(ReadOnlySpan<byte> data, SymbolFrequencies table)
    {
        var buffer = new byte[RansEncoder.GetMaxEncodedLength(data.Length)];
        var written = RansEncoder.Encode(data, table, buffer);
        Assert.InRange(written, RansEncoder.HeaderLength, buffer.Length);
        var encoded = buffer.AsSpan(0, written).ToArray();
        var decoded = new byte[data.Length];
        RansDecoder.Decode(encoded, table, decoded);
        Assert.True(data.SequenceEqual(decoded), $"round trip differs for {data.Length} symbols");
        return encoded;
    }

    /// <summary>The empirical Shannon entropy of the data, in bits for the whole stream.</summary>
    public static double EntropyBits(ReadOnlySpan<byte> data)
    {
        var counts = new long[256];
        foreach (var s in data)
            counts[s]++;
        double bits = 0;
        foreach (var c in counts)
        {
            if (c > 0)
                bits -= c * Math.Log2((double)c / data.Length);
        }
        return bits;
    }
}
