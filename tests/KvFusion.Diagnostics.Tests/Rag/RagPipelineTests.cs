using System.Text.Json;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Diagnostics.Rag;
using KvFusion.Diagnostics.Tests.Support;
using KvFusion.SemanticKernel.Embeddings;
using KvFusion.SemanticKernel.VectorStores;
using KvFusion.Storage.Hosting;
using KvFusion.Storage.RocksDb;
using Spectre.Console;

namespace KvFusion.Diagnostics.Tests.Rag;

/// <summary>
/// The RAG pipeline on tiny-pydocs, the shared corpus and MiniLM, over three short pages (small chunks, few tokens) so
/// each test takes seconds: ingest counts, reuse of what an earlier run stored, the two answers of a question, and the
/// JSON report.
/// </summary>
[Collection(SharedModelsGroup.Name)]
public sealed class RagPipelineTests(CpuModelFixture models)
{
    private static readonly string[] Pages = ["library/copy.rst.txt", "library/fnmatch.rst.txt", "library/keyword.rst.txt"];

    private static RagPipelineOptions SmallOptions(int maxTokens = 8) => new()
    {
        CorpusPath = SharedData.Path("corpus", "pydocs.tar.xz"),
        Pages = Pages,
        Questions = [.. RagDemoSet.Questions.Where(q => Pages.Contains(q.Page))],
        ChunkTokens = 128,
        Top = 3,
        MaxTokens = maxTokens,
    };

    [SkippableFact]
    public async Task Ingest_computes_every_chunk_once_and_a_second_ingest_reuses_them_all()
    {
        using var embeddings = new KvFusionEmbeddingGenerator();
        using var vectors = ChunkVectorStore.InMemory();
        using var records = vectors.GetCollection<string, ChunkRecord>("rag-test");
        await using var engine = new FusionEngine(models.Tiny, new Cache.Storage.InMemoryKvStore());
        var pipeline = new RagPipeline(engine, records, embeddings, SmallOptions());
        var reported = new List<RagIngestProgress>();

        var first = await pipeline.IngestAsync(new Recorder(reported));

        Assert.Equal(Pages.Length, first.Pages);
        Assert.True(first.Chunks >= Pages.Length, $"{first.Chunks} chunks");
        Assert.Equal(first.Chunks, first.ChunksComputed);
        Assert.Equal(0, first.ChunksReused);
        Assert.Equal(first.Chunks, first.ChunksEmbedded);
        Assert.InRange(first.Tokens, first.Chunks, first.Chunks * 128);
        Assert.Equal(first.Chunks, reported.Last(p => p.Stage == RagIngestProgress.Precompute).Done);
        Assert.Equal(first.Chunks, reported.Last(p => p.Stage == RagIngestProgress.Embed).Done);

        var second = await pipeline.IngestAsync();

        Assert.Equal(first.Chunks, second.Chunks);
        Assert.Equal(0, second.ChunksComputed);
        Assert.Equal(first.Chunks, second.ChunksReused);
        Assert.Equal(0, second.ChunksEmbedded);
        Assert.Equal(first.Chunks, second.EmbeddingsReused);
    }

    [SkippableFact]
    public async Task A_run_over_a_reopened_store_computes_and_embeds_nothing_the_first_run_stored()
    {
        using var store = new TempDirectory();
        var first = await IngestInAsync(store.Path);
        var second = await IngestInAsync(store.Path);

        Assert.Equal(first.Chunks, first.ChunksComputed);
        Assert.Equal(first.Chunks, first.ChunksEmbedded);
        Assert.Equal(first.Chunks, second.Chunks);
        Assert.Equal(0, second.ChunksComputed);
        Assert.Equal(0, second.ChunksEmbedded);
        Assert.True(Directory.Exists(ChunkVectorStore.DefaultPathFor(store.Path)));
    }

    [SkippableFact]
    public async Task A_question_is_answered_from_the_retrieved_chunks_in_both_modes_with_consistent_reports()
    {
        using var embeddings = new KvFusionEmbeddingGenerator();
        using var vectors = ChunkVectorStore.InMemory();
        using var records = vectors.GetCollection<string, ChunkRecord>("rag-test");
        await using var engine = new FusionEngine(models.Tiny, new Cache.Storage.InMemoryKvStore());
        var options = SmallOptions();
        var pipeline = new RagPipeline(engine, records, embeddings, options);
        await pipeline.IngestAsync();
        var question = options.Questions[0];

        var result = await pipeline.AskAsync(question, 1);
        var again = await pipeline.AskAsync(question, 1);

        Assert.Equal(options.Top, result.Retrieved.Count);
        Assert.All(result.Retrieved, r => Assert.Contains(r.Page, Pages));
        foreach (var chunk in result.Retrieved)
        {
            Assert.True(await engine.Store.ContainsAsync(engine.ChunkKeyOf(ChunkId.Parse(chunk.ChunkId))), $"chunk {chunk.ChunkId} is not stored");
        }

        Assert.Equal("full", result.Full.Mode);
        Assert.StartsWith("blend", result.Blend.Mode, StringComparison.Ordinal);
        Assert.Equal(result.Full.PromptTokens, result.Blend.PromptTokens);
        Assert.Equal(0, result.Full.ReusedTokens);
        Assert.Equal(result.Full.PromptTokens, result.Full.RecomputedTokens);
        Assert.True(result.Blend.ReusedTokens > 0, "blend reused nothing");
        Assert.True(result.Blend.RecomputedTokens < result.Blend.PromptTokens, $"blend recomputed {result.Blend.RecomputedTokens} of {result.Blend.PromptTokens}");
        Assert.InRange(result.Full.Tokens.Count, 1, options.MaxTokens);
        Assert.InRange(result.Blend.Tokens.Count, 1, options.MaxTokens);
        Assert.True(result.Full.TtftMs > 0 && result.Blend.TtftMs > 0);
        Assert.Equal(result.Full.TtftMs / result.Blend.TtftMs, result.Speedup, 9);
        Assert.InRange(result.PrefixAgreement, 0, 1);
        Assert.InRange(result.TokenOverlap, 0, 1);

        // Greedy decoding over the same retrieved chunks is deterministic.
        Assert.Equal(result.Retrieved.Select(r => r.ChunkId), again.Retrieved.Select(r => r.ChunkId));
        Assert.Equal(result.Full.Tokens, again.Full.Tokens);
        Assert.Equal(result.Blend.Tokens, again.Blend.Tokens);
    }

    [SkippableFact]
    public async Task A_page_the_corpus_lacks_is_reported_by_name()
    {
        using var embeddings = new KvFusionEmbeddingGenerator();
        using var vectors = ChunkVectorStore.InMemory();
        using var records = vectors.GetCollection<string, ChunkRecord>("rag-test");
        await using var engine = new FusionEngine(models.Tiny, new Cache.Storage.InMemoryKvStore());
        var pipeline = new RagPipeline(engine, records, embeddings, SmallOptions() with { Pages = ["library/no-such-page.rst.txt"] });

        var e = await Assert.ThrowsAsync<CorpusException>(() => pipeline.IngestAsync());
        Assert.Contains("library/no-such-page.rst.txt", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_demo_writes_its_tables_and_a_json_report_whose_summary_matches_its_questions()
    {
        using var store = new TempDirectory();
        var json = Path.Combine(store.Path, "out", "demo.json");
        var plot = Path.Combine(store.Path, "out", "demo.png");
        var output = new StringWriter();
        var options = SmallOptions(maxTokens: 6) with { Questions = [.. SmallOptions().Questions.Take(2)] };

        RagReport report;
        await using (var storage = await KvStorage.OpenAsync(new KvStorageOptions { Tiers = "rocksdb", RocksDb = new RocksDbTierOptions { Path = store.Path } }))
        {
            report = await RagDemo.RunAsync(models.Tiny, storage, options, new RagDemoFiles(store.Path, json, plot), Plain(output), Plain(new StringWriter()));
        }

        var text = output.ToString();
        Assert.Contains($"{report.Ingest.ChunksComputed} computed, {report.Ingest.ChunksReused} reused", text, StringComparison.Ordinal);
        Assert.Contains("Mean TTFT speedup of blend over full", text, StringComparison.Ordinal);
        Assert.Contains("answer (blend)", text, StringComparison.Ordinal);
        Assert.True(new FileInfo(plot).Length > 0, "no PNG written");

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = doc.RootElement;
        Assert.Equal("tiny-pydocs", root.GetProperty("model").GetString());
        Assert.Equal(options.Top, root.GetProperty("settings").GetProperty("top").GetInt32());
        Assert.Equal(report.Ingest.Chunks, root.GetProperty("ingest").GetProperty("chunks").GetInt32());
        Assert.Equal(report.Ingest.ChunksComputed, root.GetProperty("ingest").GetProperty("chunks_computed").GetInt32());
        var questions = root.GetProperty("questions").EnumerateArray().ToList();
        Assert.Equal(options.Questions.Count, questions.Count);
        foreach (var q in questions)
        {
            Assert.Equal(options.Top, q.GetProperty("retrieved").GetArrayLength());
            foreach (var mode in new[] { "full", "blend" })
            {
                var a = q.GetProperty(mode);
                Assert.True(a.GetProperty("ttft_ms").GetDouble() > 0);
                Assert.True(a.GetProperty("prompt_tokens").GetInt32() > 0);
                Assert.Equal(JsonValueKind.String, a.GetProperty("answer").ValueKind);
            }

            Assert.True(q.GetProperty("speedup").GetDouble() > 0);
        }

        var summary = root.GetProperty("summary");
        var full = questions.Select(q => q.GetProperty("full").GetProperty("ttft_ms").GetDouble()).ToList();
        var blend = questions.Select(q => q.GetProperty("blend").GetProperty("ttft_ms").GetDouble()).ToList();
        // The JSON rounds every number to 3 decimals, so a mean of rounded values is within 0.001 of the rounded mean
        // (rounding both to 2 places can still differ by 0.01 at a boundary: 1.7055 against 1.705).
        Assert.Equal(full.Average(), summary.GetProperty("mean_ttft_full_ms").GetDouble(), 0.002);
        Assert.Equal(blend.Average(), summary.GetProperty("mean_ttft_blend_ms").GetDouble(), 0.002);
        Assert.Equal(questions.Average(q => q.GetProperty("speedup").GetDouble()), summary.GetProperty("mean_speedup").GetDouble(), 0.002);
        Assert.Equal(options.Questions.Count, summary.GetProperty("questions").GetInt32());
    }

    private async Task<RagIngestResult> IngestInAsync(string directory)
    {
        await using var storage = await KvStorage.OpenAsync(new KvStorageOptions { Tiers = "rocksdb", RocksDb = new RocksDbTierOptions { Path = directory } });
        using var embeddings = new KvFusionEmbeddingGenerator();
        using var vectors = await ChunkVectorStore.OpenAsync(ChunkVectorStore.DefaultPathFor(directory));
        using var records = vectors.GetCollection<string, ChunkRecord>("rag-test");
        await using var engine = new FusionEngine(models.Tiny, storage.CreateStore(models.Tiny));
        var result = await new RagPipeline(engine, records, embeddings, SmallOptions()).IngestAsync();
        await storage.FlushAsync();
        return result;
    }

    private static IAnsiConsole Plain(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });

        // Wide enough that no header wraps (the CLI does the same for redirected output).
        console.Profile.Width = 200;
        return console;
    }

    private sealed class Recorder(List<RagIngestProgress> reported) : IProgress<RagIngestProgress>
    {
        public void Report(RagIngestProgress value) => reported.Add(value);
    }
}
