using System.Text;
using KvFusion.Cache.Chunking;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Cache.Tests.Chunking;

public sealed class DocumentChunkerTests
{
    // Multi-byte text: 3-byte CJK, 4-byte emoji, 2-byte Latin-1, plus ASCII, so byte-level BPE has tokens that hold
    // parts of characters.
    private static readonly string MixedText = string.Concat(Enumerable.Range(0, 40).Select(i =>
        $"日本語のテキスト {i} 🚀🚀 and some English prose. Ünïcödé “quotes” — 中文字符 👩‍💻✨ línea {i % 7}.\n"));

    [SkippableTheory]
    [InlineData(5, 0)]
    [InlineData(7, 0)]
    [InlineData(16, 0)]
    [InlineData(33, 0)]
    [InlineData(256, 0)]
    [InlineData(16, 5)]
    [InlineData(64, 16)]
    [InlineData(64, 63)]
    public void Real_tokenizer_chunks_fit_keep_characters_whole_and_respect_overlap(int maxTokens, int overlap)
    {
        using var model = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        var tokenizer = new ModelTokenizerAdapter(model);
        var all = tokenizer.Encode(MixedText);
        var chunks = new DocumentChunker(tokenizer, new ChunkingOptions { MaxTokens = maxTokens, OverlapTokens = overlap }).Chunk(MixedText);

        Assert.NotEmpty(chunks);
        Assert.Equal(0, chunks[0].StartToken);
        Assert.Equal(all.Length, chunks[^1].EndToken);
        for (var i = 0; i < chunks.Count; i++)
        {
            var c = chunks[i];
            Assert.Equal(i, c.Index);
            Assert.InRange(c.Tokens.Length, 1, maxTokens);
            Assert.Equal(all.AsSpan(c.StartToken, c.Tokens.Length).ToArray(), c.Tokens);
            Assert.Equal(tokenizer.Decode(c.Tokens), c.Text);
            Assert.DoesNotContain('\uFFFD', c.Text);
            Assert.Contains(c.Text, MixedText, StringComparison.Ordinal);
            if (i > 0)
            {
                var shared = chunks[i - 1].EndToken - c.StartToken;
                Assert.InRange(shared, 0, overlap);
                Assert.True(c.StartToken > chunks[i - 1].StartToken);
            }
        }

        if (overlap == 0)
        {
            Assert.Equal(MixedText, string.Concat(chunks.Select(c => c.Text)));
        }
        else
        {
            // Dropping each chunk's overlap with the one before gives the text back.
            var sb = new StringBuilder(chunks[0].Text);
            for (var i = 1; i < chunks.Count; i++)
            {
                var skip = chunks[i - 1].EndToken - chunks[i].StartToken;
                sb.Append(tokenizer.Decode(chunks[i].Tokens.AsSpan(skip)));
            }

            Assert.Equal(MixedText, sb.ToString());
        }
    }

    [SkippableFact]
    public void Real_tokenizer_splits_characters_so_the_boundary_check_matters()
    {
        // Guards the tests above: if no token boundary of the text fell inside a character, they would prove nothing.
        using var model = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        var tokenizer = new ModelTokenizerAdapter(model);
        var all = tokenizer.Encode(MixedText);
        var split = Enumerable.Range(1, all.Length - 1).Count(b => !DocumentChunker.IsCharacterBoundary(tokenizer, all, b));
        Assert.True(split > 0, "expected some token boundaries inside multi-byte characters");
    }

    [SkippableFact]
    public void Same_input_gives_the_same_chunks()
    {
        using var model = ModelTokenizer.Load(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"));
        var chunker = new DocumentChunker(new ModelTokenizerAdapter(model), new ChunkingOptions { MaxTokens = 48, OverlapTokens = 8 });
        var a = chunker.Chunk(MixedText);
        var b = chunker.Chunk(MixedText);
        Assert.Equal(a.Count, b.Count);
        for (var i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Tokens, b[i].Tokens);
            Assert.Equal(a[i].Text, b[i].Text);
            Assert.Equal(a[i].StartToken, b[i].StartToken);
            Assert.Equal(a[i].Index, b[i].Index);
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(-1, 0)]
    [InlineData(10, -1)]
    [InlineData(10, 10)]
    [InlineData(10, 11)]
    public void Invalid_options_throw(int maxTokens, int overlap)
    {
        var options = new ChunkingOptions { MaxTokens = maxTokens, OverlapTokens = overlap };
        Assert.Throws<ArgumentException>(options.Validate);
        Assert.Throws<ArgumentException>(() => new DocumentChunker(new ByteTokenizer(), options));
    }

    [Fact]
    public void Empty_text_gives_no_chunks()
    {
        Assert.Empty(new DocumentChunker(new ByteTokenizer(), new ChunkingOptions()).Chunk(string.Empty));
    }

    [Theory]
    [InlineData(4, 0)]
    [InlineData(5, 0)]
    [InlineData(9, 3)]
    [InlineData(10, 0)]
    public void One_byte_per_token_never_splits_a_character(int maxTokens, int overlap)
    {
        // Every multi-byte character spans several tokens here, so most boundaries are invalid.
        var tokenizer = new ByteTokenizer();
        var chunks = new DocumentChunker(tokenizer, new ChunkingOptions { MaxTokens = maxTokens, OverlapTokens = overlap }).Chunk(MixedText);
        Assert.All(chunks, c => Assert.InRange(c.Tokens.Length, 1, maxTokens));
        Assert.All(chunks, c => Assert.DoesNotContain('\uFFFD', c.Text));
        if (overlap == 0)
        {
            Assert.Equal(MixedText, string.Concat(chunks.Select(c => c.Text)));
        }
    }

    [Fact]
    public void A_real_replacement_character_in_the_text_is_not_mistaken_for_a_split()
    {
        // U+FFFD is 3 bytes; with one byte per token every chunk of 3 would be "invalid" if we only looked for U+FFFD.
        var text = "a\uFFFDb\uFFFD\uFFFDc é \uFFFD";
        var chunks = new DocumentChunker(new ByteTokenizer(), new ChunkingOptions { MaxTokens = 3 }).Chunk(text);
        Assert.Equal(text, string.Concat(chunks.Select(c => c.Text)));
        Assert.Contains(chunks, c => c.Text == "\uFFFD");
        Assert.All(chunks, c => Assert.Contains(c.Text, text, StringComparison.Ordinal));
    }

    [Fact]
    public void Size_limit_wins_when_no_cut_keeps_characters_whole()
    {
        // Two bytes per token after an odd start: every character boundary of "a🚀🚀..." is at an odd byte offset, so
        // no token boundary is valid; chunks must still respect MaxTokens and cover the tokens exactly.
        var tokenizer = new PairTokenizer();
        var text = "a" + string.Concat(Enumerable.Repeat("🚀", 12));
        var all = tokenizer.Encode(text);
        var chunks = new DocumentChunker(tokenizer, new ChunkingOptions { MaxTokens = 3 }).Chunk(text);
        Assert.All(chunks, c => Assert.InRange(c.Tokens.Length, 1, 3));
        Assert.Equal(all, chunks.SelectMany(c => c.Tokens));
    }

    [Fact]
    public void Tokens_that_straddle_characters_still_give_whole_character_chunks_where_possible()
    {
        var tokenizer = new PairTokenizer();
        var chunks = new DocumentChunker(tokenizer, new ChunkingOptions { MaxTokens = 6 }).Chunk(MixedText);
        Assert.All(chunks, c => Assert.InRange(c.Tokens.Length, 1, 6));
        Assert.All(chunks, c => Assert.DoesNotContain('\uFFFD', c.Text));
        Assert.Equal(MixedText, string.Concat(chunks.Select(c => c.Text)));
    }


    /// <summary>One token per UTF-8 byte: the worst case for splitting characters.</summary>
    private sealed class ByteTokenizer : ITextTokenizer
    {
        public int[] Encode(string text) => Encoding.UTF8.GetBytes(text).Select(b => (int)b).ToArray();

        public string Decode(ReadOnlySpan<int> tokens)
        {
            var bytes = new byte[tokens.Length];
            for (var i = 0; i < tokens.Length; i++)
            {
                bytes[i] = (byte)tokens[i];
            }

            return Encoding.UTF8.GetString(bytes);
        }
    }

    /// <summary>Two bytes per token regardless of characters, so tokens straddle character boundaries.</summary>
    private sealed class PairTokenizer : ITextTokenizer
    {
        public int[] Encode(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            var tokens = new int[(bytes.Length + 1) / 2];
            for (var i = 0; i < tokens.Length; i++)
            {
                tokens[i] = 2 * i + 1 < bytes.Length ? (bytes[2 * i] << 8) | bytes[2 * i + 1] : 0x10000 | bytes[2 * i];
            }

            return tokens;
        }

        public string Decode(ReadOnlySpan<int> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                if ((t & 0x10000) != 0)
                {
                    bytes.Add((byte)t);
                }
                else
                {
                    bytes.Add((byte)(t >> 8));
                    bytes.Add((byte)t);
                }
            }

            return Encoding.UTF8.GetString(bytes.ToArray());
        }
    }
}
