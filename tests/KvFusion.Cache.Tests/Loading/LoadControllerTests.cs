using KvFusion.Cache.Codecs;
using KvFusion.Cache.Loading;

namespace KvFusion.Cache.Tests.Loading;

public sealed class LoadControllerTests
{
    private static readonly KvCodecSpec[] Levels = [KvCodecSpec.Raw, KvCodecSpec.CacheGen(1), KvCodecSpec.CacheGen(3)];

    [Theory]
    [InlineData(1, LoadOverlap.Layers)]
    [InlineData(2, LoadOverlap.None)]
    [InlineData(3, LoadOverlap.Chunks)]
    [InlineData(4, LoadOverlap.Layers)]
    [InlineData(5, LoadOverlap.Chunks)]
    [InlineData(6, LoadOverlap.None)]
    [InlineData(7, LoadOverlap.Chunks)]
    public void The_plan_is_the_best_of_a_brute_force_search_for_every_goal(int seed, LoadOverlap overlap)
    {
        var random = new Random(seed);
        var costs = new SyntheticCosts(random);
        var request = RandomRequest(random, chunks: 5, overlap);
        var fastestExact = BruteForce(request, costs, new LoadGoal(TtftSlack: 0));
        var slowest = BruteForce(request, costs, new LoadGoal(MaxMeanKl: 0));
        var goals = new[]
        {
            LoadGoal.Fastest,
            new LoadGoal(TtftSlack: 0),
            new LoadGoal(TtftSlack: 0.5),
            new LoadGoal(MaxMeanKl: fastestExact.MeanKl / 2),
            new LoadGoal(MaxMeanKl: fastestExact.MeanKl / 2, TtftSlack: 0),
            new LoadGoal(MaxMeanKl: 0),
            new LoadGoal(Deadline: TimeSpan.FromSeconds((fastestExact.Ttft + slowest.Ttft) / 2)),
            new LoadGoal(Deadline: TimeSpan.FromSeconds(fastestExact.Ttft / 2)),
            new LoadGoal(Deadline: TimeSpan.FromSeconds(slowest.Ttft * 1.01), MaxMeanKl: fastestExact.MeanKl / 3),
        };

        var controller = new LoadController(costs);
        foreach (var goal in goals)
        {
            var plan = controller.Plan(request with { Goal = goal });
            var best = BruteForce(request, costs, goal);
            var (ttft, kl) = Cost(request, costs, plan.Ratio, [.. plan.Choices.Select(c => c.OptionIndex)]);
            Assert.Equal(best.Ttft, ttft, 9);
            Assert.Equal(best.MeanKl, kl, 9);
            Assert.InRange(Math.Abs(best.Ttft - plan.PredictedTtft.TotalSeconds), 0, 1e-6);
            Assert.Equal(best.MeanKl, plan.PredictedMeanKl, 9);
            Assert.Equal(best.Feasible, plan.MeetsGoal);
        }
    }

    [Fact]
    public void A_slow_link_sends_text_or_the_smallest_level_and_a_fast_one_reads_raw()
    {
        var request = new LoadRequest
        {
            Chunks = [.. Enumerable.Range(0, 4).Select(_ => Chunk(256))],
            Layers = 30,
            RecomputeLayers = 29,
            Fp16BytesPerToken = 46_080,
            QueryTokens = 16,
            Ratios = [new LoadRatio(0.15, 0.01)],
        };
        var slow = new LoadController(new FixedCosts(bitsPerSecond: 1e6)).Plan(request);
        Assert.All(slow.Choices, c => Assert.True(c.Option.Source == LoadSource.Text || c.Option.Codec == KvCodecSpec.CacheGen(3), c.Option.ToString()));
        var fast = new LoadController(new FixedCosts(bitsPerSecond: 1e12)).Plan(request);
        Assert.All(fast.Choices, c => Assert.Equal(KvCodecSpec.Raw, c.Option.Codec));
        Assert.True(fast.PredictedTtft < slow.PredictedTtft);
    }

    [Fact]
    public void Options_that_cannot_be_costed_are_left_out_and_a_chunk_with_none_is_an_error()
    {
        var request = new LoadRequest
        {
            Chunks = [new LoadChunk(64, [LoadOption.Stored("unmeasured", KvCodecSpec.Raw, 1000, 0), LoadOption.Stored("disk", KvCodecSpec.Raw, 1000, 0)])],
            Layers = 4,
            RecomputeLayers = 3,
            Fp16BytesPerToken = 1024,
            Ratios = [new LoadRatio(0, 0)],
        };
        var costs = new FixedCosts(1e9, knownTier: "disk");
        Assert.Equal(1, new LoadController(costs).Plan(request).Choices[0].OptionIndex);
        var none = request with { Chunks = [new LoadChunk(64, [LoadOption.Stored("unmeasured", KvCodecSpec.Raw, 1000, 0)])] };
        var error = Assert.Throws<LoadPlanningException>(() => new LoadController(costs).Plan(none));
        Assert.Contains("Chunk 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_request_is_refused_with_a_clear_error()
    {
        var good = new LoadRequest { Chunks = [Chunk(8)], Layers = 4, RecomputeLayers = 3, Fp16BytesPerToken = 1024, Ratios = [new LoadRatio(0.1, 0.01)] };
        var costs = new FixedCosts(1e9);
        var controller = new LoadController(costs);
        Assert.NotNull(controller.Plan(good));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Ratios = [] }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Ratios = [new LoadRatio(1.5, 0)] }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { RecomputeLayers = 5 }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Chunks = [new LoadChunk(0, [LoadOption.Text])] }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Chunks = [new LoadChunk(8, [])] }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Goal = new LoadGoal(Deadline: TimeSpan.Zero) }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Goal = new LoadGoal(MaxMeanKl: double.NaN) }));
        Assert.Throws<LoadPlanningException>(() => controller.Plan(good with { Goal = new LoadGoal(TtftSlack: -0.1) }));
    }

    private static LoadChunk Chunk(int tokens) => new(tokens,
    [
        LoadOption.Stored("redis", KvCodecSpec.Raw, tokens * 46_080L, 0),
        LoadOption.Stored("redis", KvCodecSpec.CacheGen(1), tokens * 9_000L, 0.02),
        LoadOption.Stored("redis", KvCodecSpec.CacheGen(3), tokens * 4_000L, 0.08),
        LoadOption.Text,
    ]);

    private static LoadRequest RandomRequest(Random random, int chunks, LoadOverlap overlap)
    {
        var list = new List<LoadChunk>();
        for (var c = 0; c < chunks; c++)
        {
            var tokens = random.Next(16, 512);
            var options = new List<LoadOption>();
            foreach (var codec in Levels)
            {
                var tier = random.Next(2) == 0 ? "disk" : "redis";
                options.Add(LoadOption.Stored(tier, codec, (long)(tokens * 46_080 / (1 + (codec.Level * random.NextDouble() * 4))), codec.Level * random.NextDouble() * 0.05));
            }

            options.Add(LoadOption.Text);
            list.Add(new LoadChunk(tokens, options));
        }

        return new LoadRequest
        {
            Chunks = list,
            Layers = 24,
            RecomputeLayers = 23,
            Fp16BytesPerToken = 46_080,
            QueryTokens = random.Next(4, 64),
            Ratios = [new LoadRatio(0.15, 0.03 * random.NextDouble()), new LoadRatio(0.3, 0.01 * random.NextDouble()), new LoadRatio(0.5, 0.002)],
            Overlap = overlap,
        };
    }

    private readonly record struct Best(double Ttft, double MeanKl, bool Feasible);

    /// <summary>Every ratio and every option of every chunk, chosen by the rule the controller documents.</summary>
    private static Best BruteForce(LoadRequest request, ILoadCosts costs, LoadGoal goal)
    {
        var all = new List<Best>();
        var n = request.Chunks.Count;
        var pick = new int[n];
        var total = 1;
        foreach (var chunk in request.Chunks)
        {
            total *= chunk.Options.Count;
        }

        foreach (var ratio in request.Ratios)
        {
            for (var combo = 0; combo < total; combo++)
            {
                var rest = combo;
                for (var c = 0; c < n; c++)
                {
                    pick[c] = rest % request.Chunks[c].Options.Count;
                    rest /= request.Chunks[c].Options.Count;
                }

                var (ttft, kl) = Cost(request, costs, ratio, pick);
                all.Add(new Best(ttft, kl, (goal.Deadline is not { } d || ttft <= d.TotalSeconds) && (goal.MaxMeanKl is not { } b || kl <= b + 1e-12)));
            }
        }

        var feasible = all.Where(p => p.Feasible).ToList();
        if (feasible.Count == 0)
        {
            return goal.Deadline is not null
                ? all.OrderBy(p => p.Ttft).ThenBy(p => p.MeanKl).First()
                : all.OrderBy(p => p.MeanKl).ThenBy(p => p.Ttft).First();
        }

        var limit = goal.Deadline is not null && goal.MaxMeanKl is null ? double.PositiveInfinity : feasible.Min(p => p.Ttft) * (1 + goal.TtftSlack);
        return feasible.Where(p => p.Ttft <= limit).OrderBy(p => p.MeanKl).ThenBy(p => p.Ttft).First();
    }

    /// <summary>TTFT and mean KL of one plan, computed directly from the costs.</summary>
    private static (double Ttft, double MeanKl) Cost(LoadRequest request, ILoadCosts costs, LoadRatio ratio, int[] pick)
    {
        double transfer = 0, decode = 0, recompute = 0, text = 0, loss = 0, tokens = 0;
        var query = costs.RecomputeSeconds((double)request.QueryTokens * request.Layers)!.Value;
        for (var c = 0; c < request.Chunks.Count; c++)
        {
            var chunk = request.Chunks[c];
            var option = chunk.Options[pick[c]];
            tokens += chunk.Tokens;
            if (option.Source == LoadSource.Text)
            {
                text += costs.PrefillSeconds((double)chunk.Tokens * request.Layers)!.Value;
                recompute += costs.RecomputeSeconds(ratio.Ratio * chunk.Tokens * request.RecomputeLayers)!.Value;
                loss += chunk.Tokens * ratio.Kl;
                continue;
            }

            transfer += costs.TransferSeconds(option.Tier!, option.Bytes)!.Value;
            decode += costs.DecodeSeconds(option.Codec, (long)chunk.Tokens * request.Fp16BytesPerToken)!.Value;
            recompute += costs.RecomputeSeconds(ratio.Ratio * chunk.Tokens * request.RecomputeLayers)!.Value;
            loss += chunk.Tokens * (option.CodecKl + ratio.Kl);
        }

        var compute = decode + recompute + text + query;
        var ttft = request.Overlap switch
        {
            LoadOverlap.Layers => Math.Max(transfer, compute) + (Math.Min(transfer, compute) / request.Layers),
            LoadOverlap.Chunks => Math.Max(transfer, text) + decode + recompute + query,
            _ => transfer + compute,
        };
        return (ttft, loss / tokens);
    }

    /// <summary>Random but fixed costs: two tiers, a decode rate per codec, a recompute rate.</summary>
    private sealed class SyntheticCosts(Random random) : ILoadCosts
    {
        private readonly double _diskLatency = random.NextDouble() * 0.002;
        private readonly double _diskSecondsPerByte = 8 / (1e9 + (random.NextDouble() * 9e9));
        private readonly double _redisLatency = 0.001 + (random.NextDouble() * 0.01);
        private readonly double _redisSecondsPerByte = 8 / (1e8 + (random.NextDouble() * 2e9));
        private readonly double[] _decodePerByte = [1e-11 * random.NextDouble(), 1e-10 * random.NextDouble(), 2e-10 * random.NextDouble(), 3e-10 * random.NextDouble()];
        private readonly double _recomputePerTokenLayer = 2e-6 + (random.NextDouble() * 2e-5);
        private readonly double _prefillPerTokenLayer = 1e-6 + (random.NextDouble() * 1e-5);

        public double? TransferSeconds(string tier, long bytes) =>
            tier == "disk" ? _diskLatency + (bytes * _diskSecondsPerByte) : _redisLatency + (bytes * _redisSecondsPerByte);

        public double? DecodeSeconds(KvCodecSpec codec, long fp16Bytes) => _decodePerByte[codec.Level] * fp16Bytes;

        public double? RecomputeSeconds(double tokenLayers) => tokenLayers * _recomputePerTokenLayer;

        public double? PrefillSeconds(double tokenLayers) => tokenLayers * _prefillPerTokenLayer;
    }

    private sealed class FixedCosts(double bitsPerSecond, string? knownTier = null) : ILoadCosts
    {
        public double? TransferSeconds(string tier, long bytes) => knownTier is null || tier == knownTier ? 0.002 + (bytes * 8 / bitsPerSecond) : null;

        public double? DecodeSeconds(KvCodecSpec codec, long fp16Bytes) => fp16Bytes * 5e-11;

        public double? RecomputeSeconds(double tokenLayers) => tokenLayers * 1e-5;

        public double? PrefillSeconds(double tokenLayers) => tokenLayers * 1e-5;
    }
}
