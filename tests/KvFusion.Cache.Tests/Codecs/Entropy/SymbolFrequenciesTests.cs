using KvFusion.Cache.Codecs.Entropy;
using static KvFusion.Cache.Tests.Codecs.Entropy.EntropyTestData;

namespace KvFusion.Cache.Tests.Codecs.Entropy;

public sealed class SymbolFrequenciesTests
{
    [Fact]
    public void Two_hundred_random_count_tables_normalize_exactly_and_keep_every_occurring_symbol()
    {
        var random = new Random(99);
        for (var c = 0; c < 200; c++)
        {
            var counts = new long[random.Next(1, 257)];
            for (var s = 0; s < counts.Length; s++)
            {
                counts[s] = random.Next(3) switch
                {
                    0 => 0,
                    1 => random.Next(1, 10),
                    _ => random.NextInt64(1, random.Next(2) == 0 ? 1_000_000 : long.MaxValue / 256),
                };
            }
            if (counts.All(x => x == 0))
                counts[0] = 1;
            var scaleBits = random.Next(SymbolFrequencies.MinScaleBits, SymbolFrequencies.MaxScaleBits + 1);
            var table = SymbolFrequencies.FromCounts(counts, scaleBits);
            AssertWellFormed(table);
            for (var s = 0; s < 256; s++)
            {
                var count = s < counts.Length ? counts[s] : 0;
                Assert.Equal(count > 0, table.Frequency((byte)s) > 0);
            }
        }
    }

    [Fact]
    public void Normalization_is_integer_exact_and_repeatable()
    {
        var equal = SymbolFrequencies.FromCounts([1, 1, 1, 1]);
        Assert.All(Enumerable.Range(0, 4), s => Assert.Equal(4096, equal.Frequency((byte)s)));

        // 3 equal counts into 16384: the floors give 5461 each and the one leftover goes to the lowest symbol.
        var thirds = SymbolFrequencies.FromCounts([7, 7, 7], 14);
        Assert.Equal([5462, 5461, 5461], Enumerable.Range(0, 3).Select(s => thirds.Frequency((byte)s)));

        var huge = SymbolFrequencies.FromCounts([long.MaxValue, long.MaxValue, 1], 12);
        AssertWellFormed(huge);
        Assert.Equal(1, huge.Frequency(2));

        var data = Geometric(new Random(1), 100_000, 0.7);
        var a = new byte[SymbolFrequencies.MaxSerializedLength];
        var b = new byte[SymbolFrequencies.MaxSerializedLength];
        var la = SymbolFrequencies.FromSymbols(data).Write(a);
        var lb = SymbolFrequencies.FromSymbols(data).Write(b);
        Assert.Equal(a.AsSpan(0, la).ToArray(), b.AsSpan(0, lb).ToArray());
    }

    [Fact]
    public void Bad_counts_and_scales_are_argument_errors()
    {
        Assert.Throws<ArgumentException>(() => SymbolFrequencies.FromCounts([]));
        Assert.Throws<ArgumentException>(() => SymbolFrequencies.FromCounts([0, 0]));
        Assert.Throws<ArgumentException>(() => SymbolFrequencies.FromSymbols([]));
        Assert.Throws<ArgumentException>(() => SymbolFrequencies.FromCounts([1, -1]));
        Assert.Throws<ArgumentException>(() => SymbolFrequencies.FromCounts(new long[257]));
        Assert.Throws<ArgumentOutOfRangeException>(() => SymbolFrequencies.FromCounts([1], SymbolFrequencies.MinScaleBits - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SymbolFrequencies.FromCounts([1], 16));
    }

    [Fact]
    public void Serialized_tables_round_trip_and_report_their_length()
    {
        var random = new Random(17);
        for (var c = 0; c < 100; c++)
        {
            var data = RandomDistribution(random, random.Next(1, 5_000));
            var table = SymbolFrequencies.FromSymbols(data, random.Next(12, 16));
            var buffer = new byte[SymbolFrequencies.MaxSerializedLength + 3];
            var written = table.Write(buffer);
            Assert.Equal(table.SerializedLength, written);
            var read = SymbolFrequencies.Read(buffer, out var bytesRead);
            Assert.Equal(written, bytesRead);
            Assert.Equal(table.ScaleBits, read.ScaleBits);
            for (var s = 0; s < 256; s++)
                Assert.Equal(table.Frequency((byte)s), read.Frequency((byte)s));
            AssertWellFormed(read);
        }

        var full = SymbolFrequencies.FromCounts([1], 15);
        var one = new byte[SymbolFrequencies.MaxSerializedLength];
        Assert.Equal(1 + 32 + 3, full.Write(one));
        Assert.Equal(32768, SymbolFrequencies.Read(one, out _).Frequency(0));
        Assert.Throws<ArgumentException>(() => full.Write(new byte[35]));
    }

    [Fact]
    public void Truncated_tables_are_rejected_at_every_length()
    {
        var table = SymbolFrequencies.FromSymbols(Geometric(new Random(2), 10_000, 0.9));
        var buffer = new byte[table.SerializedLength];
        table.Write(buffer);
        for (var length = 0; length < buffer.Length; length++)
            Assert.Throws<EntropyStreamException>(() => SymbolFrequencies.Read(buffer.AsSpan(0, length), out _));
    }

    [Fact]
    public void Malformed_tables_are_rejected()
    {
        var valid = new byte[1 + 32 + 4];
        valid[0] = 12;
        valid[1] = 0b11; // symbols 0 and 1
        valid[33] = 0xFF; // 2047 + 1 = 2048 as a 2-byte varint
        valid[34] = 0x0F;
        valid[35] = 0xFF;
        valid[36] = 0x0F;
        Assert.Equal(2048, SymbolFrequencies.Read(valid, out var n).Frequency(1));
        Assert.Equal(valid.Length, n);

        Reject(valid, b => b[0] = SymbolFrequencies.MinScaleBits - 1);
        Reject(valid, b => b[0] = 16);
        Reject(valid, b => b[36] = 0x0E); // sums to 4096 - 128
        Reject(valid, b => b[1] = 0b111); // a third symbol with no bytes behind it
        Reject(valid, b => b[1] = 0); // no symbols: sums to 0
        Reject([12, 1, .. new byte[31], 0x80, 0x80, 0x80, 0x01], _ => { }); // a varint longer than 3 bytes
        Reject([12, 1, .. new byte[31], 0x80, 0x20], _ => { }); // 4096 + 1 exceeds the total
        Reject([12, 1, .. new byte[31], 0xFF, 0xFF, 0x7F], _ => { }); // far above the total
        Reject([12, 1, .. new byte[31], 0xFF, 0x9F, 0x00], _ => { }); // 4096 written with an overlong zero byte
    }

    [Fact]
    public void Random_bytes_never_escape_the_table_reader_as_another_exception_type()
    {
        var random = new Random(23);
        var buffer = new byte[SymbolFrequencies.MaxSerializedLength];
        for (var c = 0; c < 2_000; c++)
        {
            random.NextBytes(buffer);
            buffer[0] = (byte)random.Next(10, 18);
            try
            {
                AssertWellFormed(SymbolFrequencies.Read(buffer.AsSpan(0, random.Next(buffer.Length + 1)), out _));
            }
            catch (EntropyStreamException)
            {
            }
        }
    }

    private static void Reject(byte[] valid, Action<byte[]> corrupt)
    {
        var copy = (byte[])valid.Clone();
        corrupt(copy);
        Assert.Throws<EntropyStreamException>(() => SymbolFrequencies.Read(copy, out _));
    }

    private static void AssertWellFormed(SymbolFrequencies table)
    {
        var total = 0;
        for (var s = 0; s < 256; s++)
        {
            Assert.Equal(total, table.CumulativeFrequency((byte)s));
            var f = table.Frequency((byte)s);
            for (var slot = total; slot < total + f; slot++)
                Assert.Equal(s, table.SymbolAt(slot));
            total += f;
        }
        Assert.Equal(table.Total, total);
    }
}
