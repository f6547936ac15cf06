using System.Text.Json;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tests.Keys;

public sealed class ChunkIdTests
{
    private const string ModelA = "946484eb195bda404a4661999618030d7146ec263a962b584cd4ec38b205323f";
    private const string ModelB = "47935f4b61c42c0093ccb9e50c8e33c1fe62dda9ab0015a17ae7a119f9a33fd6";
    private const string TokenizerA = "905ec451befb6560e7f841540178d2f6fd6aab8276f26ffa3429ebd2e599f20b";
    private const string TokenizerB = "2f4572b0cb143b1b6c54c37896a6b170dc7ca9cc5a08e5945332b38435cfceaf";

    [Fact]
    public void Test_vectors_file_is_reproduced()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(VectorsPath()));
        var root = doc.RootElement;
        Assert.Equal(ChunkId.FormatVersion, root.GetProperty("format_version").GetUInt32());
        Assert.Equal(PrefixBlockId.BlockTokens, root.GetProperty("block_tokens").GetInt32());

        var chunkCases = root.GetProperty("chunk_ids").EnumerateArray().ToList();
        Assert.True(chunkCases.Count >= 6, "the vectors file should hold at least 6 chunk cases");
        foreach (var c in chunkCases)
        {
            var id = ChunkId.Compute(c.GetProperty("model_fingerprint").GetString()!, c.GetProperty("tokenizer_fingerprint").GetString()!, Tokens(c));
            Assert.Equal(c.GetProperty("id").GetString(), id.ToString());
        }

        var chains = root.GetProperty("prefix_chains").EnumerateArray().ToList();
        Assert.True(chains.Count >= 2, "the vectors file should hold at least 2 chains");
        foreach (var c in chains)
        {
            var tokens = Tokens(c);
            var ids = PrefixBlockId.ComputeChain(c.GetProperty("model_fingerprint").GetString()!, c.GetProperty("tokenizer_fingerprint").GetString()!, tokens);
            var expected = c.GetProperty("block_ids").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Equal(tokens.Length / PrefixBlockId.BlockTokens, expected.Count);
            Assert.Equal(expected, ids.Select(i => i.ToString()));
        }
    }

    [Fact]
    public void Id_is_64_lowercase_hex_and_parses_back()
    {
        var id = ChunkId.Compute(ModelA, TokenizerA, [1, 2, 3]);
        var text = id.ToString();
        Assert.Equal(64, text.Length);
        Assert.All(text, ch => Assert.True(char.IsAsciiDigit(ch) || ch is >= 'a' and <= 'f'));
        Assert.Equal(id, ChunkId.Parse(text));
        Assert.Equal(id, ChunkId.Parse(text.ToUpperInvariant()));
        Assert.True(ChunkId.TryParse(text, out var parsed));
        Assert.Equal(id, parsed);
        Assert.Equal(id.GetHashCode(), parsed.GetHashCode());
        Assert.True(id == parsed);
        Assert.False(id != parsed);
    }

    [Fact]
    public void Raw_bytes_round_trip_and_match_the_hex()
    {
        var id = ChunkId.Compute(ModelA, TokenizerA, [42]);
        var bytes = new byte[ChunkId.ByteLength];
        id.WriteBytes(bytes);
        Assert.Equal(id.ToString(), Convert.ToHexStringLower(bytes));
        Assert.Equal(id, ChunkId.FromBytes(bytes));
        Assert.Throws<ArgumentException>(() => id.WriteBytes(new byte[31]));
        Assert.Throws<ArgumentException>(() => ChunkId.FromBytes(new byte[33]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("9eaf5ac8adc50b2991a68937175138f97aecc962b29cc0527034de2be41cfc1")]
    [InlineData("9eaf5ac8adc50b2991a68937175138f97aecc962b29cc0527034de2be41cfc111")]
    [InlineData("9eaf5ac8adc50b2991a68937175138f97aecc962b29cc0527034de2be41cfcXY")]
    [InlineData(" eaf5ac8adc50b2991a68937175138f97aecc962b29cc0527034de2be41cfc11")]
    [InlineData("9eaf5ac8adc50b2991a68937175138f97aecc962b29cc0527034de2be41cfc1\u00e9")]
    public void Invalid_strings_are_rejected(string text)
    {
        var e = Assert.Throws<FormatException>(() => ChunkId.Parse(text));
        Assert.Contains("chunk id", e.Message, StringComparison.Ordinal);
        Assert.False(ChunkId.TryParse(text, out _));
        Assert.Throws<FormatException>(() => PrefixBlockId.Parse(text));
        Assert.False(PrefixBlockId.TryParse(text, out _));
    }

    [Fact]
    public void Parse_errors_say_what_is_wrong()
    {
        Assert.Contains("expected 64 hex characters, got 3", Assert.Throws<FormatException>(() => ChunkId.Parse("abc")).Message, StringComparison.Ordinal);
        Assert.Contains("character 63 ('X')", Assert.Throws<FormatException>(() => ChunkId.Parse(new string('a', 63) + "X")).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => ChunkId.Parse(null!));
        Assert.False(ChunkId.TryParse(null, out _));
    }

    [Fact]
    public void Every_input_changes_the_id()
    {
        var reference = ChunkId.Compute(ModelA, TokenizerA, [1, 2, 3]);
        Assert.Equal(reference, ChunkId.Compute(ModelA, TokenizerA, [1, 2, 3]));
        Assert.Equal(reference, ChunkId.Compute(ModelA.ToUpperInvariant(), TokenizerA, [1, 2, 3]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelB, TokenizerA, [1, 2, 3]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelA, TokenizerB, [1, 2, 3]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelA, TokenizerA, [1, 2, 4]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelA, TokenizerA, [3, 2, 1]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelA, TokenizerA, [1, 2]));
        Assert.NotEqual(reference, ChunkId.Compute(ModelA, TokenizerA, [1, 2, 3, 0]));

        // Swapping the two fingerprints must matter too: they have fixed places in the layout.
        Assert.NotEqual(ChunkId.Compute(ModelA, TokenizerA, [1]), ChunkId.Compute(TokenizerA, ModelA, [1]));
        Assert.NotEqual(default, reference);
    }

    [Fact]
    public void Model_fingerprint_overload_matches_the_strings()
    {
        var fp = new KvFusion.Engine.Models.ModelFingerprint(ModelA, TokenizerA);
        Assert.Equal(ChunkId.Compute(ModelA, TokenizerA, [7, 8]), ChunkId.Compute(fp, [7, 8]));
        Assert.Equal(PrefixBlockId.ComputeChain(ModelA, TokenizerA, Sequence(300)), PrefixBlockId.ComputeChain(fp, Sequence(300)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abcd")]
    [InlineData("zz4484eb195bda404a4661999618030d7146ec263a962b584cd4ec38b205323f")]
    public void Bad_fingerprints_are_rejected(string fingerprint)
    {
        var e = Assert.Throws<ArgumentException>(() => ChunkId.Compute(fingerprint, TokenizerA, [1]));
        Assert.Equal("modelFingerprintHex", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => ChunkId.Compute(ModelA, fingerprint, [1]));
        Assert.Equal("tokenizerFingerprintHex", e.ParamName);
        Assert.Throws<ArgumentException>(() => PrefixBlockId.ComputeChain(fingerprint, TokenizerA, Sequence(256)));
    }

    [Fact]
    public void Chain_gives_one_id_per_full_block_and_none_for_a_partial_one()
    {
        Assert.Empty(PrefixBlockId.ComputeChain(ModelA, TokenizerA, Sequence(255)));
        Assert.Single(PrefixBlockId.ComputeChain(ModelA, TokenizerA, Sequence(256)));
        Assert.Equal(2, PrefixBlockId.ComputeChain(ModelA, TokenizerA, Sequence(600)).Count);

        // The 88 trailing tokens of a 600-token prefix do not enter any id.
        var tokens = Sequence(600);
        var before = PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens);
        tokens[599] ^= 1;
        tokens[512] ^= 1;
        Assert.Equal(before, PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens));
        Assert.Equal(before, PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens.AsSpan(0, 512)));
    }

    [Fact]
    public void Block_ids_depend_on_every_previous_block()
    {
        var tokens = Sequence(3 * PrefixBlockId.BlockTokens);
        var reference = PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens);
        Assert.Equal(3, reference.Distinct().Count());

        // A change in block 0 changes every id after it.
        var changed = (int[])tokens.Clone();
        changed[5]++;
        var chain = PrefixBlockId.ComputeChain(ModelA, TokenizerA, changed);
        Assert.All(Enumerable.Range(0, 3), i => Assert.NotEqual(reference[i], chain[i]));

        // A change in block 1 leaves block 0 alone and changes blocks 1 and 2.
        changed = (int[])tokens.Clone();
        changed[PrefixBlockId.BlockTokens + 3]++;
        chain = PrefixBlockId.ComputeChain(ModelA, TokenizerA, changed);
        Assert.Equal(reference[0], chain[0]);
        Assert.NotEqual(reference[1], chain[1]);
        Assert.NotEqual(reference[2], chain[2]);

        // Block 2's tokens alone, after a different history, get a different id.
        var shifted = PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens.AsSpan(PrefixBlockId.BlockTokens));
        Assert.NotEqual(reference[2], shifted[1]);

        // Other model or tokenizer: every block differs.
        Assert.NotEqual(reference[0], PrefixBlockId.ComputeChain(ModelB, TokenizerA, tokens)[0]);
        Assert.NotEqual(reference[0], PrefixBlockId.ComputeChain(ModelA, TokenizerB, tokens)[0]);
    }

    [Fact]
    public void Extending_a_chain_block_by_block_matches_the_whole_chain()
    {
        var tokens = Sequence(2 * PrefixBlockId.BlockTokens);
        var chain = PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens);
        var first = PrefixBlockId.Compute(ModelA, TokenizerA, null, tokens.AsSpan(0, PrefixBlockId.BlockTokens));
        var second = PrefixBlockId.Compute(ModelA, TokenizerA, first, tokens.AsSpan(PrefixBlockId.BlockTokens));
        Assert.Equal(chain, [first, second]);
        Assert.Throws<ArgumentException>(() => PrefixBlockId.Compute(ModelA, TokenizerA, null, tokens.AsSpan(0, 255)));

        var bytes = new byte[32];
        second.WriteBytes(bytes);
        Assert.Equal(second, PrefixBlockId.FromBytes(bytes));
        Assert.Equal(second, PrefixBlockId.Parse(second.ToString()));
    }

    [Fact]
    public void Prefix_block_and_chunk_ids_of_the_same_tokens_differ()
    {
        var tokens = Sequence(PrefixBlockId.BlockTokens);
        var block = PrefixBlockId.ComputeChain(ModelA, TokenizerA, tokens)[0];
        Assert.NotEqual(ChunkId.Compute(ModelA, TokenizerA, tokens).ToString(), block.ToString());
    }

    private static int[] Tokens(JsonElement testCase) =>
        testCase.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static int[] Sequence(int n) => Enumerable.Range(0, n).Select(i => (i * 7919 + 17) % 4096).ToArray();

    private static string VectorsPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Middleware.sln")))
            {
                return Path.Combine(dir.FullName, "docs", "test-vectors", "chunk-ids.json");
            }
        }

        throw new InvalidOperationException($"No Middleware.sln above {AppContext.BaseDirectory}.");
    }
}
