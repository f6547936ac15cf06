using System.Buffers.Binary;
using KvFusion.Cache.Codecs.Entropy;
using static KvFusion.Cache.Tests.Codecs.Entropy.EntropyTestData;

namespace KvFusion.Cache.Tests.Codecs.Entropy;

public sealed class RansCorruptionTests
{
    [Fact]
    public void Every_truncation_of_a_stream_is_rejected()
    {
        var data = Geometric(new Random(31), 3_001, 0.8);
        var table = SymbolFrequencies.FromSymbols(data);
        var encoded = AssertRoundTrip(data, table);
        var decoded = new byte[data.Length];
        // The decoder reads the same bytes in the same order as on the whole stream, so it always runs out.
        for (var length = 0; length < encoded.Length; length++)
            Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(encoded.AsSpan(0, length), table, decoded));
    }

    [Fact]
    public void Trailing_bytes_and_a_wrong_symbol_count_are_rejected()
    {
        var data = Geometric(new Random(37), 5_000, 0.8);
        var table = SymbolFrequencies.FromSymbols(data);
        var encoded = AssertRoundTrip(data, table);
        Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode([.. encoded, 0], table, new byte[data.Length]));
        Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(encoded, table, new byte[data.Length - 1]));
        Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(encoded, table, new byte[data.Length + 1]));
        Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(encoded, table, new byte[data.Length * 2]));
    }

    [Fact]
    public void A_state_outside_the_normalized_interval_is_rejected()
    {
        var encoded = AssertRoundTrip([1, 2, 3, 4, 5]);
        var table = SymbolFrequencies.FromSymbols([1, 2, 3, 4, 5]);
        foreach (var bad in new[] { 0u, RansEncoder.StateLowerBound - 1, RansEncoder.StateLowerBound << 8, uint.MaxValue })
        {
            var copy = (byte[])encoded.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(8), bad);
            Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(copy, table, new byte[5]));
        }
    }

    [Fact]
    public void Decoding_with_a_different_table_is_rejected()
    {
        var data = Geometric(new Random(41), 20_000, 0.8);
        var encoded = AssertRoundTrip(data);
        var other = SymbolFrequencies.FromSymbols(Geometric(new Random(43), 20_000, 0.6));
        Assert.Throws<EntropyStreamException>(() => RansDecoder.Decode(encoded, other, new byte[data.Length]));
    }

    [Fact]
    public void Two_thousand_mutations_only_ever_raise_EntropyStreamException_and_nearly_all_are_detected()
    {
        var random = new Random(47);
        var data = Geometric(random, 4_099, 0.85);
        var table = SymbolFrequencies.FromSymbols(data);
        var encoded = AssertRoundTrip(data, table);
        var decoded = new byte[data.Length];
        var detected = 0;
        const int Mutations = 2_000;
        for (var m = 0; m < Mutations; m++)
        {
            var copy = (byte[])encoded.Clone();
            switch (m % 4)
            {
                case 0:
                case 1:
                    var bit = random.Next(copy.Length * 8);
                    copy[bit / 8] ^= (byte)(1 << (bit % 8));
                    break;
                case 2:
                    copy[random.Next(copy.Length)] ^= (byte)random.Next(1, 256);
                    break;
                default:
                    for (var k = random.Next(2, 9); k > 0; k--)
                        copy[random.Next(copy.Length)] = (byte)random.Next(256);
                    break;
            }
            if (copy.AsSpan().SequenceEqual(encoded))
            {
                detected++;
                continue;
            }
            try
            {
                RansDecoder.Decode(copy, table, decoded);
            }
            catch (EntropyStreamException)
            {
                detected++;
            }
        }
        Assert.True(detected >= Mutations * 99 / 100, $"only {detected} of {Mutations} mutations were detected");
    }

    [Fact]
    public void Random_garbage_of_any_length_only_ever_raises_EntropyStreamException()
    {
        var random = new Random(53);
        var table = SymbolFrequencies.FromSymbols(Geometric(random, 10_000, 0.9), 15);
        for (var c = 0; c < 2_000; c++)
        {
            var garbage = new byte[random.Next(0, 600)];
            random.NextBytes(garbage);
            if (garbage.Length >= RansEncoder.HeaderLength && c % 2 == 0)
            {
                // Plant valid-looking states so the decoder gets past the header and into the symbol loop.
                for (var k = 0; k < RansEncoder.Interleave; k++)
                {
                    var state = (uint)random.NextInt64(RansEncoder.StateLowerBound, (long)RansEncoder.StateLowerBound << 8);
                    BinaryPrimitives.WriteUInt32LittleEndian(garbage.AsSpan(k * 4), state);
                }
            }
            try
            {
                RansDecoder.Decode(garbage, table, new byte[random.Next(0, 1_200)]);
            }
            catch (EntropyStreamException)
            {
            }
        }
    }
}
