using KvFusion.Cache.Codecs;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;
using KvFusion.Cache.Tests.Tiers;
using KvFusion.Cache.Tiers;

namespace KvFusion.Cache.Tests.Loading;

/// <summary>The loading controller inside fusion, over a throttled tier that keeps an fp8 level of every chunk.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class LoadingFusionTests(TinyModelFixture fixture)
{
    private static readonly string[] Texts =
    [
        "The os module provides a portable way of using operating system dependent functionality.",
        "The json module encodes Python objects as JSON strings and decodes them back into objects.",
        "The re module provides regular expression matching operations similar to those found in Perl.",
    ];

    [SkippableFact]
    public async Task On_a_slow_link_every_chunk_is_computed_from_text_and_the_fused_context_is_the_default_one()
    {
        await using var setup = await Setup.CreateAsync(fixture, bitsPerSecond: 2e6);
        var request = Request();
        var plain = await setup.FuseAsync(request);
        var slow = await setup.FuseAsync(request with { Loading = new LoadGoal(MaxMeanKl: 0) });
        Assert.Equal(["text", "text", "text"], slow.Report.Loading!.Choices);
        Assert.True(slow.Report.Loading.MeetsGoal);
        Assert.Equal(plain.Logits, slow.Logits);
        Assert.Equal(3, slow.Report.ChunksPrecomputed);

        // Nothing was read, so the transfer estimate is refreshed by one read in the background.
        var samples = setup.Costs.Transfer("remote")!.Value.Samples;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (setup.Costs.Transfer("remote")!.Value.Samples == samples && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20);
        }

        Assert.True(setup.Costs.Transfer("remote")!.Value.Samples > samples);
    }

    [SkippableFact]
    public async Task On_a_fast_link_chunks_are_read_and_any_lossless_mix_gives_the_default_fused_context()
    {
        await using var setup = await Setup.CreateAsync(fixture, bitsPerSecond: 1e10);
        var request = Request();
        var plain = await setup.FuseAsync(request);
        var exact = await setup.FuseAsync(request with { Loading = new LoadGoal(MaxMeanKl: 0) });

        // Reading some chunks while others are computed from text can beat reading all: both are lossless.
        Assert.Contains("raw@remote", exact.Report.Loading!.Choices);
        Assert.All(exact.Report.Loading.Choices, c => Assert.Contains(c, new[] { "raw@remote", "text" }));
        Assert.Equal(plain.Logits, exact.Logits);
        Assert.Equal(0, exact.Report.Loading.PredictedMeanKl);

        var loose = await setup.FuseAsync(request with { Loading = new LoadGoal(MaxMeanKl: 1, TtftSlack: 0) });
        Assert.Equal(3, loose.Report.Loading!.Choices.Count);
        Assert.All(loose.Report.Loading.Choices, c => Assert.Contains(c, new[] { "raw@remote", "fp8@remote", "text" }));
        Assert.All(loose.Logits, v => Assert.True(float.IsFinite(v)));
    }

    [SkippableFact]
    public async Task Chunks_named_by_id_are_planned_from_their_known_tokens_and_a_removed_one_is_unknown()
    {
        await using var setup = await Setup.CreateAsync(fixture, bitsPerSecond: 2e6);
        var byId = Request() with { Chunks = [.. setup.Ids.Select(ChunkInput.FromId)] };
        var plain = await setup.FuseAsync(byId);
        var slow = await setup.FuseAsync(byId with { Loading = new LoadGoal(MaxMeanKl: 0) });
        Assert.Equal(["text", "text", "text"], slow.Report.Loading!.Choices);
        Assert.Equal(plain.Logits, slow.Logits);

        Assert.True(await setup.Store.RemoveAsync(new CacheKey(CacheEntryKind.Chunk, setup.Ids[1].ToString(), "sink:bos")));
        var e = await Assert.ThrowsAsync<FusionException>(() => setup.FuseAsync(byId with { Loading = new LoadGoal(MaxMeanKl: 0) }));
        Assert.Equal(FusionError.UnknownChunk, e.Error);
    }

    [SkippableFact]
    public async Task Without_a_controller_or_before_costs_are_measured_the_report_says_why_and_every_chunk_is_read()
    {
        await using var setup = await Setup.CreateAsync(fixture, bitsPerSecond: 1e9, withController: false);
        var result = await setup.FuseAsync(Request() with { Loading = new LoadGoal(MaxMeanKl: 0) });
        Assert.Empty(result.Report.Loading!.Choices);
        Assert.Contains("no loading controller", result.Report.Loading.Skipped, StringComparison.Ordinal);

        await using var cold = await Setup.CreateAsync(fixture, bitsPerSecond: 1e9);
        var first = await cold.FuseAsync(Request() with { Loading = new LoadGoal(MaxMeanKl: 0) });
        Assert.NotNull(first.Report.Loading!.Skipped);
        Assert.Equal(0, first.Report.ChunksPrecomputed);
    }

    private static FusionRequest Request() => new()
    {
        Chunks = [.. Texts.Select(ChunkInput.FromText)],
        Query = "Which module handles regular expressions?",
        Mode = FusionMode.Blend,
    };

    private sealed class Setup : IAsyncDisposable
    {
        private KvTierManager _manager = null!;
        private FusionEngine _engine = null!;

        public LoadCostModel Costs { get; } = new(new LoadCostModelOptions { MinSamples = 1 });

        public List<ChunkId> Ids { get; } = [];

        public ContainerKvStore Store { get; private set; } = null!;

        public static async Task<Setup> CreateAsync(TinyModelFixture fixture, double bitsPerSecond, bool withController = true)
        {
            var setup = new Setup();
            var model = fixture.Model;
            var link = new ThrottledLink(bitsPerSecond, TimeSpan.FromMilliseconds(1));
            var remote = new KvLowerTier(new ThrottledKvTier(new ControllableTier("remote"), link), null, [KvCodecSpec.Fp8]);
            var managerOptions = new KvTierManagerOptions { CostModel = setup.Costs, OperationTimeout = TimeSpan.FromSeconds(60), PromoteToUpperTiers = false };
            setup._manager = new KvTierManager(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 16 }), [remote], managerOptions);
            var store = setup.Store = ContainerKvStore.ForModel(model, setup._manager.For(new KvNamespace("default", model.Fingerprint.Model)), new ContainerKvStoreOptions { CostModel = setup.Costs });
            var loading = new LoadingOptions
            {
                Tier = "remote",
                StoredCodec = KvCodecSpec.Raw,
                Levels = [KvCodecSpec.Fp8],
                CodecKl = new Dictionary<KvCodecSpec, double> { [KvCodecSpec.Fp8] = 0.01 },
                RefreshAfter = TimeSpan.Zero,
            };
            setup._engine = new FusionEngine(model, store, new FusionEngineOptions { CostModel = setup.Costs, Loading = withController ? loading : null });
            foreach (var text in Texts)
            {
                setup.Ids.Add(await setup._engine.PutChunkAsync(ChunkInput.FromText(text)));
            }

            await setup._manager.FlushAsync();
            return setup;
        }

        public async Task<(FusionReport Report, float[] Logits)> FuseAsync(FusionRequest request)
        {
            using var context = await _engine.FuseAsync(request);
            return (context.Report, [.. context.Logits]);
        }

        public async ValueTask DisposeAsync()
        {
            _engine.Dispose();
            await _manager.DisposeAsync();
        }
    }
}
