using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;
using KvFusion.Engine.Generation;

namespace KvFusion.Cache.Tests.Fusion;

[Collection(TinyModelGroup.Name)]
public sealed class FusionExactnessTests(TinyModelFixture fixture)
{
    private static readonly string[] Chunks =
    [
        "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.",
        "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.",
        "The with statement is used to wrap the execution of a block with methods defined by a context manager.",
    ];

    private const string Query = "Explain how the json module serializes";

    private static FusionRequest Request(FusionMode mode, BlendOptions? blend = null, SinkKind sink = SinkKind.Bos, string? prefix = "You answer questions about Python.") => new()
    {
        Prefix = prefix,
        Chunks = Chunks.Select(ChunkInput.FromText).ToList(),
        Query = Query,
        Mode = mode,
        Blend = blend ?? new BlendOptions(),
        Sink = sink,
        ReserveTokens = 16,
    };

    private static async Task<(float[] Logits, int[] Greedy, FusionReport Report)> Fuse(FusionEngine engine, FusionRequest request, int greedy = 8)
    {
        using var ctx = await engine.FuseAsync(request);
        var logits = (float[])ctx.Logits.Clone();
        var tokens = new List<int>();
        await foreach (var t in ctx.GenerateAsync(new SamplingOptions { MaxTokens = greedy, StopTokens = [] }))
        {
            if (t.Id >= 0)
            {
                tokens.Add(t.Id);
            }
        }

        return (logits, tokens.ToArray(), ctx.Report);
    }

    private static float MaxAbsDiff(float[] a, float[] b)
    {
        var worst = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        }

        return worst;
    }

    [SkippableFact]
    public async Task Blend_at_ratio_one_recomputing_from_layer_zero_equals_full()
    {
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var full = await Fuse(engine, Request(FusionMode.Full));
        foreach (var criterion in new[] { SelectionCriterion.Deviation, SelectionCriterion.QueryAttention })
        {
            var blend = await Fuse(engine, Request(FusionMode.Blend, new BlendOptions { Ratio = 1.0, ReuseLayerZero = false, Criterion = criterion }));
            Assert.True(MaxAbsDiff(full.Logits, blend.Logits) <= 1e-4f, $"{criterion}: max |Δlogit| = {MaxAbsDiff(full.Logits, blend.Logits)}");
            Assert.Equal(full.Greedy, blend.Greedy);
            Assert.All(blend.Report.RecomputedPerLayer, n => Assert.Equal(blend.Report.TotalTokens, n));
        }
    }

    [SkippableFact]
    public async Task Prefix_mode_reuses_stored_blocks_and_equals_full()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        var longPrefix = string.Concat(Enumerable.Repeat("Answer precisely, cite the Python documentation, and keep examples short. ", 12));
        var full = await Fuse(engine, Request(FusionMode.Full, prefix: longPrefix));
        var cold = await Fuse(engine, Request(FusionMode.Prefix, prefix: longPrefix));
        Assert.Equal(0, cold.Report.PrefixBlocksReused);
        var warm = await Fuse(engine, Request(FusionMode.Prefix, prefix: longPrefix));
        Assert.True(warm.Report.PrefixBlocksReused >= 1, "the second request should reuse stored prefix blocks");
        Assert.Equal(warm.Report.PrefixBlocksReused * 256, warm.Report.ReusedTokens);
        Assert.True(MaxAbsDiff(full.Logits, cold.Logits) <= 1e-4f, "cold prefix mode computes everything");
        // Stored K/V are fp16, so reused blocks differ from full by fp16 rounding only.
        Assert.True(MaxAbsDiff(full.Logits, warm.Logits) <= 2e-2f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, warm.Logits)}");
        Assert.Equal(full.Greedy, warm.Greedy);
    }

    [SkippableFact]
    public async Task Reuse_of_one_chunk_at_position_zero_with_the_same_sink_equals_full()
    {
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunks[0])], Query = Query, Sink = SinkKind.None, ReserveTokens = 16 };
        var full = await Fuse(engine, request with { Mode = FusionMode.Full });
        var reuse = await Fuse(engine, request with { Mode = FusionMode.Reuse });
        Assert.Equal(reuse.Report.ChunkTokens, reuse.Report.ReusedTokens);
        Assert.True(MaxAbsDiff(full.Logits, reuse.Logits) <= 2e-2f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, reuse.Logits)}");
        Assert.Equal(full.Greedy, reuse.Greedy);
    }

    [SkippableFact]
    public async Task Check_layer_keeps_exactly_the_top_k_chunk_tokens_by_deviation_and_every_query_token()
    {
        const double ratio = 0.2;
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var options = new BlendOptions { Ratio = ratio, Criterion = SelectionCriterion.Deviation, Deviation = DeviationTarget.KeyAndValue, CheckLayer = 1 };
        var request = Request(FusionMode.Blend, options, prefix: null);
        var result = await Fuse(engine, request);
        var report = result.Report;
        var k = (int)Math.Round(ratio * report.ChunkTokens, MidpointRounding.AwayFromZero);
        Assert.Equal(k, report.SelectedSlots.Count);
        Assert.Equal([(1, k, report.ChunkTokens)], report.Selection);
        // After the check layer, exactly the selected chunk tokens and all query tokens are computed.
        Assert.Equal(k + report.QueryTokens, report.RecomputedPerLayer[^1]);

        // Independently: deviation of every chunk token at layer 1, the same way, and its top k.
        var expected = ExpectedTopK(engine, request, k);
        Assert.Equal(expected, report.SelectedSlots);
    }

    private int[] ExpectedTopK(FusionEngine engine, FusionRequest request, int k)
    {
        var model = fixture.Model;
        var chunkTokens = request.Chunks.Select(c => engine.Tokenize(c.Text!)).ToList();
        var query = engine.Tokenize(request.Query!);
        var all = chunkTokens.SelectMany(t => t).Concat(query).ToArray();
        var chunkCount = all.Length - query.Length;
        using var session = model.CreateSession(all.Length);
        var slots = Enumerable.Range(0, all.Length).ToArray();
        var pass = session.BeginPass(all, slots, slots);
        var store = (InMemoryKvStore)engine.Store;
        var at = 0;
        foreach (var tokens in chunkTokens)
        {
            var key = new KvFusion.Cache.Keys.CacheKey(KvFusion.Cache.Keys.CacheEntryKind.Chunk, engine.ChunkIdOf(tokens).ToString(), "sink:bos");
            var entry = store.GetAsync(key).AsTask().Result!;
            KvFusion.Cache.Chunks.ChunkPrecomputer.Import(session, entry, at);
            at += tokens.Length;
        }

        pass.ComputeQkv(0);
        pass.CommitKv(0, Enumerable.Range(chunkCount, query.Length).ToArray());
        pass.CompleteLayer(0);
        pass.ComputeQkv(1);
        var deviation = new float[all.Length];
        pass.CacheDeviation(keys: true, values: true, deviation);
        return Enumerable.Range(0, chunkCount).OrderByDescending(i => deviation[i]).ThenBy(i => i).Take(k).Order().ToArray();
    }

    [Fact]
    public void Token_selection_takes_the_highest_scores_breaks_ties_by_row_and_keeps_required_rows()
    {
        float[] scores = [0.5f, 3f, 1f, 3f, float.NaN, 2f, 0f];
        var kept = TokenSelection.Select(scores, [0, 1, 2, 3, 4, 5], 3, [6]);
        Assert.Equal([1, 3, 5, 6], kept);
        Assert.Equal([6], TokenSelection.Select(scores, [0, 1], 0, [6]));
        Assert.Equal([0, 1, 6], TokenSelection.Select(scores, [0, 1], 10, [6]));
    }

    [Theory]
    [InlineData("full", FusionMode.Full, 1.0, null)]
    [InlineData("blend", FusionMode.Blend, 0.15, null)]
    [InlineData("blend:0.3", FusionMode.Blend, 0.3, null)]
    [InlineData("blend:0.15:ref", FusionMode.Blend, 0.15, "ref")]
    public void Mode_specs_parse(string text, FusionMode mode, double ratio, string? variant)
    {
        var spec = FusionModeSpec.Parse(text);
        Assert.Equal(mode, spec.Mode);
        if (mode == FusionMode.Blend)
        {
            Assert.Equal(ratio, spec.Ratio);
        }

        Assert.Equal(variant, spec.Variant);
        Assert.Equal(spec, FusionModeSpec.Parse(spec.ToString()));
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("blend:0")]
    [InlineData("blend:1.5")]
    [InlineData("reuse:0.2")]
    public void Bad_mode_specs_are_rejected(string text) =>
        Assert.Equal(FusionError.InvalidRequest, Assert.Throws<FusionException>(() => FusionModeSpec.Parse(text)).Error);

    [Fact]
    public void Every_catalog_variant_resolves_to_valid_options()
    {
        foreach (var variant in FusionModeCatalog.Variants.Keys)
        {
            var (_, blend) = FusionModeCatalog.Resolve(new FusionModeSpec(FusionMode.Blend, 0.15, variant));
            blend.Validate(6);
        }
    }
}
