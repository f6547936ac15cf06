using System.Text;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Engine.Errors;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Cache.Tests.Evaluation;

public sealed class FusionCaseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvfusion-cases-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Json_lines_round_trip()
    {
        FusionCase[] cases =
        [
            new(null, ["first chunk", "second \"quoted\" <chunk> & more\nwith a newline"], " What is", " the answer.\n"),
            new("You are a helpful assistant.", ["日本語 🚀 \u00e9\t\\ backslash", string.Empty], "q", "a"),
        ];
        var path = Path.Combine(_dir, "sub", "cases.jsonl");
        FusionCase.WriteJsonLines(path, cases);

        Assert.Equal(cases, FusionCase.ReadJsonLines(path));
        var lines = File.ReadAllText(path).Split('\n');
        Assert.Equal(3, lines.Length); // two objects, each ending in '\n'
        Assert.Equal(string.Empty, lines[2]);
        Assert.DoesNotContain("prefix", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("{\"prefix\":\"You are a helpful assistant.\",\"chunks\":[", lines[1], StringComparison.Ordinal);
        Assert.Contains("日本語", lines[1], StringComparison.Ordinal); // readable: BMP text is not \u-escaped
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
    }

    [Fact]
    public void Blank_lines_are_skipped_and_unknown_properties_ignored()
    {
        var path = Path.Combine(_dir, "blank.jsonl");
        File.WriteAllText(path, "\n  \n{\"chunks\":[\"c\"],\"query\":\"q\",\"answer\":\"a\",\"extra\":1,\"prefix\":null}\r\n\n");
        var cases = FusionCase.ReadJsonLines(path);
        Assert.Equal([new FusionCase(null, ["c"], "q", "a")], cases);
    }

    [Theory]
    [InlineData("{\"chunks\":[\"c\"],\"answer\":\"a\"}", "query", "missing")]
    [InlineData("{\"chunks\":[\"c\"],\"query\":\"q\"}", "answer", "missing")]
    [InlineData("{\"query\":\"q\",\"answer\":\"a\"}", "chunks", "missing")]
    [InlineData("{\"chunks\":\"c\",\"query\":\"q\",\"answer\":\"a\"}", "chunks", "must be an array of strings, got a string")]
    [InlineData("{\"chunks\":[\"c\",3],\"query\":\"q\",\"answer\":\"a\"}", "chunks[1]", "must be a string, got a number")]
    [InlineData("{\"chunks\":[],\"query\":\"q\",\"answer\":\"a\"}", "chunks", "is empty")]
    [InlineData("{\"chunks\":[\"c\"],\"query\":1,\"answer\":\"a\"}", "query", "must be a string, got a number")]
    [InlineData("{\"chunks\":[\"c\"],\"query\":\"q\",\"answer\":null}", "answer", "must be a string, got null")]
    [InlineData("{\"prefix\":true,\"chunks\":[\"c\"],\"query\":\"q\",\"answer\":\"a\"}", "prefix", "must be a string or null")]
    [InlineData("[1,2]", null, "expected a JSON object, got an array")]
    [InlineData("{\"chunks\":[\"c\"],", null, "not valid JSON")]
    [InlineData("\"just a string\"", null, "expected a JSON object, got a string")]
    public void Malformed_line_is_reported_with_file_line_and_field(string badLine, string? field, string problem)
    {
        var path = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(path, ["{\"chunks\":[\"c\"],\"query\":\"q\",\"answer\":\"a\"}", string.Empty, badLine]);
        var e = Assert.Throws<InputFileException>(() => FusionCase.ReadJsonLines(path));
        Assert.Equal(path, e.FilePath);
        Assert.Equal(3, e.LineNumber);
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field is null ? $"{path}:3: " : $"{path}:3: '{field}': ", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Problem, StringComparison.Ordinal);
        Assert.IsAssignableFrom<KvFusionException>(e);
    }

    [Fact]
    public void Missing_case_file_is_an_input_file_error_naming_it()
    {
        var path = Path.Combine(_dir, "absent.jsonl");
        var e = Assert.Throws<InputFileException>(() => FusionCase.ReadJsonLines(path));
        Assert.Equal(path, e.FilePath);
        Assert.Null(e.LineNumber);
    }

    [Fact]
    public void Generator_is_deterministic_for_a_seed()
    {
        var corpus = SyntheticCorpus(30);
        var options = new FusionCaseOptions { Cases = 8, ChunksPerCase = 4, ChunkTokens = 120, QueryTokens = 10, AnswerTokens = 20, Seed = 7 };
        var a = new FusionCaseGenerator(new ByteTokenizer(), options).Generate(corpus);
        var b = new FusionCaseGenerator(new ByteTokenizer(), options).Generate(corpus);
        Assert.Equal(a, b);
        var c = new FusionCaseGenerator(new ByteTokenizer(), options with { Seed = 8 }).Generate(corpus);
        Assert.NotEqual(a, c);
        Assert.Equal(8, a.Count);
    }

    [Fact]
    public void Generated_cases_have_the_configured_shape()
    {
        var corpus = SyntheticCorpus(30);
        var options = new FusionCaseOptions { Cases = 10, ChunksPerCase = 5, ChunkTokens = 100, QueryTokens = 8, AnswerTokens = 16, Seed = 3, Prefix = "System." };
        var tokenizer = new ByteTokenizer();
        AssertShape(tokenizer, options, new FusionCaseGenerator(tokenizer, options).GenerateDetailed(corpus));
    }

    [Fact]
    public void Handoff_cases_are_the_same_texts_joined_into_one_segment()
    {
        var corpus = SyntheticCorpus(30);
        var options = new FusionCaseOptions { Cases = 6, ChunksPerCase = 4, ChunkTokens = 100, QueryTokens = 8, AnswerTokens = 16, Seed = 5 };
        var tokenizer = new ByteTokenizer();
        var separate = new FusionCaseGenerator(tokenizer, options).Generate(corpus);
        var handoff = new FusionCaseGenerator(tokenizer, options with { Handoff = true }).Generate(corpus);
        Assert.Equal(separate.Count, handoff.Count);
        for (var i = 0; i < separate.Count; i++)
        {
            var segment = Assert.Single(handoff[i].Chunks);
            Assert.Equal(string.Join(FusionCaseOptions.HandoffSeparator, separate[i].Chunks), segment);
            Assert.Equal(separate[i].Query, handoff[i].Query);
            Assert.Equal(separate[i].Answer, handoff[i].Answer);
            Assert.Contains(handoff[i].Query + handoff[i].Answer, segment, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Too_small_a_corpus_is_reported()
    {
        var options = new FusionCaseOptions { Cases = 1, ChunksPerCase = 5, ChunkTokens = 100, QueryTokens = 8, AnswerTokens = 16 };
        var e = Assert.Throws<CorpusException>(() => new FusionCaseGenerator(new ByteTokenizer(), options).Generate(SyntheticCorpus(3)));
        Assert.Contains("does not have 5 documents", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 6, 256, 12, 24)]
    [InlineData(1, 0, 256, 12, 24)]
    [InlineData(1, 6, 0, 12, 24)]
    [InlineData(1, 6, 256, 0, 24)]
    [InlineData(1, 6, 256, 12, -1)]
    [InlineData(1, 6, 36, 12, 24)]
    public void Invalid_options_throw(int cases, int chunks, int chunkTokens, int queryTokens, int answerTokens)
    {
        var options = new FusionCaseOptions { Cases = cases, ChunksPerCase = chunks, ChunkTokens = chunkTokens, QueryTokens = queryTokens, AnswerTokens = answerTokens };
        Assert.Throws<ArgumentException>(options.Validate);
        Assert.Throws<ArgumentException>(() => new FusionCaseGenerator(new ByteTokenizer(), options));
    }

    [Fact]
    public void Corpus_reader_reads_a_directory_of_text_files_in_path_order()
    {
        var root = Path.Combine(_dir, "corpus");
        Directory.CreateDirectory(Path.Combine(root, "b"));
        File.WriteAllText(Path.Combine(root, "b", "z.rst"), "zed");
        File.WriteAllText(Path.Combine(root, "a.txt"), "ay é");
        File.WriteAllBytes(Path.Combine(root, "bom.rst.txt"), [0xEF, 0xBB, 0xBF, (byte)'x']);
        File.WriteAllText(Path.Combine(root, "image.png"), "not text");
        var docs = new CorpusReader(root).ReadAll();
        Assert.Equal(["a.txt", "b/z.rst", "bom.rst.txt"], docs.Select(d => d.Path));
        Assert.Equal(["ay é", "zed", "x"], docs.Select(d => d.Text));
    }

    [Fact]
    public void Corpus_reader_rejects_invalid_utf8_and_missing_paths()
    {
        var root = Path.Combine(_dir, "bad-corpus");
        Directory.CreateDirectory(root);
        File.WriteAllBytes(Path.Combine(root, "bad.txt"), [0x61, 0xFF, 0x62]);
        Assert.Contains("bad.txt is not valid UTF-8", Assert.Throws<CorpusException>(() => new CorpusReader(root).ReadAll()).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => new CorpusReader(Path.Combine(_dir, "nothing-here")).ReadAll());
    }

    [SkippableFact]
    public void Corpus_reader_reads_the_shared_archive()
    {
        var docs = new CorpusReader(SharedData.Path("corpus", "pydocs.tar.xz")).ReadAll();
        Assert.True(docs.Count > 400, $"expected > 400 documents, got {docs.Count}");
        Assert.Equal(docs.Select(d => d.Path).Order(StringComparer.Ordinal), docs.Select(d => d.Path));
        Assert.All(docs, d => Assert.False(d.Path.StartsWith('.') || d.Path.StartsWith('/'), d.Path));
        Assert.All(docs, d => Assert.True(CorpusReader.IsTextDocument(d.Path)));
        Assert.Contains(docs, d => d.Path == "library/os.rst.txt" && d.Text.Contains("os.path", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Real_corpus_cases_have_the_configured_shape()
    {
        using var model = ModelTokenizer.Load(SharedData.Path("models", "tiny-pydocs", "tokenizer.json"));
        var tokenizer = new ModelTokenizerAdapter(model);
        var docs = new CorpusReader(SharedData.Path("corpus", "pydocs.tar.xz")).ReadAll();
        var options = new FusionCaseOptions { Cases = 6, ChunksPerCase = 4, ChunkTokens = 128, Seed = 11 };
        AssertShape(tokenizer, options, new FusionCaseGenerator(tokenizer, options).GenerateDetailed(docs));
    }

    [SkippableTheory]
    [InlineData("fusion-cases-tiny.jsonl", 12, 6, 256, 1UL, false)]
    [InlineData("fusion-cases-mini.jsonl", 3, 3, 64, 2UL, false)]
    [InlineData("fusion-cases-tiny-seed7.jsonl", 12, 6, 256, 7UL, false)]
    [InlineData("fusion-cases-tiny-seed11.jsonl", 24, 6, 256, 11UL, false)]
    [InlineData("handoff-cases-tiny.jsonl", 12, 4, 256, 3UL, true)]
    public void Committed_case_sets_are_what_the_generator_makes(string file, int cases, int chunks, int chunkTokens, ulong seed, bool handoff)
    {
        // The committed sets are generator output; if the generator changes on purpose, regenerate them (docs/fusion-cases.md).
        var committed = FusionCase.ReadJsonLines(RepositoryRoot.Combine("tests", "data", file));
        using var model = ModelTokenizer.Load(SharedData.Path("models", "tiny-pydocs", "tokenizer.json"));
        var tokenizer = new ModelTokenizerAdapter(model);
        var docs = new CorpusReader(SharedData.Path("corpus", "pydocs.tar.xz")).ReadAll();
        var options = new FusionCaseOptions { Cases = cases, ChunksPerCase = chunks, ChunkTokens = chunkTokens, Seed = seed, Handoff = handoff };
        Assert.Equal(committed, new FusionCaseGenerator(tokenizer, options).Generate(docs));
        if (!handoff)
        {
            Assert.All(committed, c => Assert.All(c.Chunks, chunk => Assert.Equal(chunkTokens, tokenizer.Encode(chunk).Length)));
        }
    }

    private static void AssertShape(ITextTokenizer tokenizer, FusionCaseOptions options, IReadOnlyList<GeneratedCase> generated)
    {
        Assert.Equal(options.Cases, generated.Count);
        foreach (var g in generated)
        {
            var c = g.Case;
            Assert.Equal(options.Prefix, c.Prefix);
            Assert.Equal(options.ChunksPerCase, c.Chunks.Count);
            Assert.Equal(options.ChunksPerCase, g.Chunks.Count);
            Assert.Equal(options.ChunksPerCase, g.Chunks.Select(ch => ch.DocumentPath).Distinct().Count());
            for (var i = 0; i < c.Chunks.Count; i++)
            {
                Assert.Equal(options.ChunkTokens, g.Chunks[i].Tokens.Length);
                Assert.Equal(tokenizer.Decode(g.Chunks[i].Tokens), c.Chunks[i]);
                Assert.Equal(g.Chunks[i].Tokens, tokenizer.Encode(c.Chunks[i]));
                Assert.DoesNotContain('\uFFFD', c.Chunks[i]);
            }

            // The query repeats a sentence start of the source chunk and the answer is what follows it there.
            Assert.Contains(c.Query + c.Answer, c.Chunks[g.SourceIndex], StringComparison.Ordinal);
            Assert.Equal(tokenizer.Decode(g.Chunks[g.SourceIndex].Tokens.AsSpan(g.QueryStart, options.QueryTokens)), c.Query);
            Assert.Equal(options.QueryTokens, tokenizer.Encode(c.Query).Length);
            Assert.Equal(options.AnswerTokens, tokenizer.Encode(c.Answer).Length);
            Assert.False(string.IsNullOrWhiteSpace(c.Query));
            Assert.False(string.IsNullOrWhiteSpace(c.Answer));
            Assert.DoesNotContain('\uFFFD', c.Query);
            Assert.DoesNotContain('\uFFFD', c.Answer);
        }

        // The source lands at different positions across cases (random, not always first).
        if (generated.Count >= 6)
        {
            Assert.True(generated.Select(g => g.SourceIndex).Distinct().Count() > 1);
        }
    }

    private static List<CorpusDocument> SyntheticCorpus(int documents)
    {
        var docs = new List<CorpusDocument>();
        for (var d = 0; d < documents; d++)
        {
            var sb = new StringBuilder();
            for (var s = 0; s < 12; s++)
            {
                sb.Append($"Document {d} sentence {s} talks about topic {(d * 31 + s * 7) % 13} at some length. ");
                if (s % 4 == 3)
                {
                    sb.Append('\n');
                }
            }

            docs.Add(new CorpusDocument($"doc{d:D2}.txt", sb.ToString()));
        }

        return docs;
    }



    /// <summary>One token per UTF-8 byte; round-trips any text.</summary>
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
}
