using KvFusion.Cache.Codecs.Entropy;

namespace KvFusion.Cache.Tests.Codecs.Entropy;

public sealed class RansRunCoderTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 4, 1 },
        { 3, 4, 2 },
        { 128, 256, 3 },
        { 17, 8, 4 },
        { 2, 4096, 5 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void RunsWithTheirOwnTablesRoundTripExactly(int runs, int runLength, int seed)
    {
        var random = new Random(seed);
        var (symbols, tables) = RandomRuns(random, runs, runLength);
        var decoded = RoundTrip(symbols, runLength, tables);
        Assert.Equal(symbols, decoded);
    }

    [Fact]
    public void AllEqualAndAdversarialRunsRoundTrip()
    {
        // One run certain (a single symbol), one uniform over the alphabet, one coded against a table that makes its
        // symbols as rare as possible.
        const int n = 64;
        var symbols = new byte[3 * n];
        var rare = new long[256];
        rare[0] = 1_000_000;
        for (var s = 1; s < 256; s++)
            rare[s] = 1;
        // Token-major: symbol i of run r is at 3i + r.
        for (var i = 0; i < n; i++)
        {
            symbols[3 * i] = 7;
            symbols[(3 * i) + 1] = (byte)(i * 4);
            symbols[(3 * i) + 2] = (byte)(255 - (i % 3));
        }

        var single = new long[256];
        single[7] = 1;
        var uniform = new long[256];
        Array.Fill(uniform, 1L);
        RansRunTable[] tables =
        [
            new(SymbolFrequencies.FromCounts(single, 12)),
            new(SymbolFrequencies.FromCounts(uniform, 12)),
            new(SymbolFrequencies.FromCounts(rare, 15)),
        ];
        Assert.Equal(symbols, RoundTrip(symbols, n, tables));
    }

    [Fact]
    public void TheStreamHoldsTheRunsOneAfterAnotherInTheSingleTableFormat()
    {
        // Two runs under one table code exactly what the single-table encoder codes for run 0's symbols followed by
        // run 1's: the matrix layout is the memory side only.
        var random = new Random(21);
        const int runLength = 96;
        var first = EntropyTestData.RandomDistribution(random, runLength);
        var second = EntropyTestData.RandomDistribution(random, runLength);
        byte[] sequential = [.. first, .. second];
        var table = new RansRunTable(SymbolFrequencies.FromSymbols(sequential, 14));
        var matrix = new byte[2 * runLength];
        for (var j = 0; j < runLength; j++)
        {
            matrix[2 * j] = first[j];
            matrix[(2 * j) + 1] = second[j];
        }

        var runStream = new byte[RansRunCoder.GetMaxEncodedLength(matrix.Length)];
        var runLengthWritten = RansRunCoder.Encode(matrix, runLength, [table, table], runStream);
        var singleStream = new byte[RansEncoder.GetMaxEncodedLength(sequential.Length)];
        var singleWritten = RansEncoder.Encode(sequential, table.Frequencies, singleStream);
        Assert.Equal(singleStream.AsSpan(0, singleWritten).ToArray(), runStream.AsSpan(0, runLengthWritten).ToArray());
        var decoded = new byte[matrix.Length];
        RansRunCoder.Decode(runStream.AsSpan(0, runLengthWritten), runLength, [table, table], decoded);
        Assert.Equal(matrix, decoded);
    }

    [Fact]
    public void ASymbolOutsideItsRunsTableIsRefusedAtEncode()
    {
        var counts = new long[256];
        counts[1] = 1;
        var table = new RansRunTable(SymbolFrequencies.FromCounts(counts, 12));
        var destination = new byte[RansRunCoder.GetMaxEncodedLength(4)];
        Assert.Throws<ArgumentException>(() => RansRunCoder.Encode([1, 1, 2, 1], 4, [table], destination));
    }

    [Fact]
    public void RunLengthsThatAreNotMultiplesOfFourAreRefused()
    {
        var table = new RansRunTable(SymbolFrequencies.FromCounts([1, 1], 12));
        Assert.Throws<ArgumentException>(() => RansRunCoder.Encode(new byte[6], 3, [table, table], new byte[64]));
        Assert.Throws<ArgumentException>(() => RansRunCoder.Decode(new byte[64], 6, [table], new byte[6]));
    }

    [Fact]
    public void TruncatedExtendedOrMutatedStreamsFailWithEntropyStreamException()
    {
        var random = new Random(11);
        var (symbols, tables) = RandomRuns(random, 16, 64);
        var destination = new byte[RansRunCoder.GetMaxEncodedLength(symbols.Length)];
        var length = RansRunCoder.Encode(symbols, 64, tables, destination);
        var stream = destination.AsSpan(0, length).ToArray();
        var output = new byte[symbols.Length];
        for (var cut = 0; cut < stream.Length; cut++)
            Assert.Throws<EntropyStreamException>(() => RansRunCoder.Decode(stream.AsSpan(0, cut), 64, tables, output));
        Assert.Throws<EntropyStreamException>(() => RansRunCoder.Decode([.. stream, 0], 64, tables, output));

        // A mutation either is caught or decodes to other symbols; it never reads out of range or loops.
        var caught = 0;
        for (var i = 0; i < 2000; i++)
        {
            var mutated = (byte[])stream.Clone();
            mutated[random.Next(mutated.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                RansRunCoder.Decode(mutated, 64, tables, output);
            }
            catch (EntropyStreamException)
            {
                caught++;
            }
        }

        Assert.True(caught > 1000, $"only {caught} of 2000 single-bit mutations were detected by the stream checks");
    }

    private static byte[] RoundTrip(byte[] symbols, int runLength, RansRunTable[] tables)
    {
        var destination = new byte[RansRunCoder.GetMaxEncodedLength(symbols.Length)];
        var length = RansRunCoder.Encode(symbols, runLength, tables, destination);
        var decoded = new byte[symbols.Length];
        RansRunCoder.Decode(destination.AsSpan(0, length), runLength, tables, decoded);
        return decoded;
    }

    private static (byte[] Symbols, RansRunTable[] Tables) RandomRuns(Random random, int runs, int runLength)
    {
        var symbols = new byte[runs * runLength];
        var tables = new RansRunTable[runs];
        for (var r = 0; r < runs; r++)
        {
            var run = EntropyTestData.RandomDistribution(random, runLength);
            for (var j = 0; j < runLength; j++)
                symbols[(j * runs) + r] = run[j];
            tables[r] = new RansRunTable(SymbolFrequencies.FromSymbols(run, random.Next(12, 16)));
        }

        return (symbols, tables);
    }
}
