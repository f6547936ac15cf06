using System.Diagnostics;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Redis;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>Settings of <see cref="LoaderBenchmark"/>.</summary>
public sealed record LoaderBenchmarkOptions
{
    /// <summary>Nominal link rates, in Gbit/s.</summary>
    public required IReadOnlyList<double> GbitPerSecond { get; init; }

    /// <summary>Requests per rate and policy (one case each, cycling over the cases).</summary>
    public int Requests { get; init; } = 6;

    /// <summary>The spread of the rate per request: the nominal rate times e^(σ·N(0,1)), as in CacheGen's traces.</summary>
    public double TraceSigma { get; init; } = 0.5;

    /// <summary>The link's latency per operation.</summary>
    public TimeSpan Latency { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>The TTFT deadline; null: the median TTFT of computing every chunk from text, measured in the warm-up.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>The extra levels the remote tier keeps (the chunk's own entry is raw).</summary>
    public IReadOnlyList<KvCodecSpec> Levels { get; init; } = [KvCodecSpec.CacheGen(1), KvCodecSpec.CacheGen(3)];

    /// <summary>The seed of the rate trace.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// A Redis (StackExchange.Redis configuration, one server) to keep the chunks in, reached through a
    /// <see cref="Networking.ThrottlingTcpProxy"/> on loopback so loading meets real network code; null: a throttled
    /// in-process tier.
    /// </summary>
    public string? Redis { get; init; }
}

/// <summary>One policy at one nominal rate; <c>PredictedTtftMs</c> is the controller's median predicted TTFT (NaN for the fixed choices, and when it made no plan).</summary>
public sealed record LoaderPoint(double GbitPerSecond, string Policy, double TtftMs, double TtftP90Ms, double MeanKl, double DeadlineMet, IReadOnlyDictionary<string, int> Choices, double PredictedTtftMs);

/// <summary>The run: points, the deadline, and the codec KLs the controller was given (measured in the same run).</summary>
public sealed record LoaderBenchmarkResult(IReadOnlyList<LoaderPoint> Points, TimeSpan Deadline, IReadOnlyDictionary<KvCodecSpec, double> CodecKl);

/// <summary>
/// TTFT and quality of the loading controller against each fixed choice (always raw, always the smallest level,
/// always text) over a throttled remote tier whose rate varies per request. Every chunk is stored raw with the extra
/// levels; each request fuses one case in blend mode; quality is KL(full ‖ fused) of the next-token distribution.
/// The controller's codec KLs are measured first in the same run (blend over each level against blend over raw).
/// </summary>
public static class LoaderBenchmark
{
    /// <summary>
    /// The controller's quality budget: loose, so with the deadline its goal is the fastest plan (best quality within
    /// the default 10% TTFT slack) that meets the deadline, the measure the fixed choices are compared on.
    /// </summary>
    public const double ControllerBudget = 10;

    /// <summary>The policies, in table order.</summary>
    public static readonly IReadOnlyList<string> Policies = ["controller", "raw", "smallest", "text"];

    /// <summary>Runs the benchmark; <paramref name="progress"/> gets (done, total) requests.</summary>
    public static async Task<LoaderBenchmarkResult> RunAsync(TransformerModel model, IReadOnlyList<FusionCase> cases, LoaderBenchmarkOptions options, IProgress<(int Done, int Total)>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(cases);
        ArgumentNullException.ThrowIfNull(options);
        if (cases.Count == 0 || options.GbitPerSecond.Count == 0 || options.Levels.Count == 0)
        {
            throw new ArgumentException("The loader benchmark needs cases, rates and at least one level.");
        }

        var costs = new LoadCostModel();
        var link = new ThrottledLink(1e11, options.Latency);
        await using var proxy = options.Redis is { } redis ? ProxyTo(redis) : null;
        IKvTier remote = proxy is null
            ? new ThrottledKvTier(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 1L << 34 }), link, "remote")
            : await RedisTier.ConnectAsync(new RedisTierOptions { Configuration = proxy.Address, KeyPrefix = "kvf-bench-loader-" + Guid.NewGuid().ToString("N")[..8], OperationTimeout = TimeSpan.FromMinutes(2) }, null, ct).ConfigureAwait(false);
        var rate = proxy is null ? (Action<double>)(bps => link.BitsPerSecond = bps) : bps => proxy.BitsPerSecond = bps;
        var managerOptions = new KvTierManagerOptions { CostModel = costs, OperationTimeout = TimeSpan.FromMinutes(5), PromoteToUpperTiers = false };
        await using var manager = new KvTierManager(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 16 }), [new KvLowerTier(remote, null, options.Levels)], managerOptions);
        var store = ContainerKvStore.ForModel(model, manager.For(new KvNamespace(KvNamespace.DefaultTenant, model.Fingerprint.Model)), new ContainerKvStoreOptions { CostModel = costs });
        var smallest = Smallest(options.Levels);
        var engineOptions = new FusionEngineOptions { CostModel = costs, Batching = null, StorePrefixBlocks = false };
        using var root = new FusionEngine(model, store, engineOptions);
        foreach (var c in cases)
        {
            foreach (var chunk in c.Chunks)
            {
                await root.PutChunkAsync(ChunkInput.FromText(chunk), cancellationToken: ct).ConfigureAwait(false);
            }
        }

        await manager.FlushAsync(ct).ConfigureAwait(false);
        var full = new float[cases.Count][];
        var fullEngine = root.WithStore(new InMemoryKvStore());
        for (var i = 0; i < cases.Count; i++)
        {
            using var context = await fullEngine.FuseAsync(Request(cases[i]) with { Mode = FusionMode.Full }, ct).ConfigureAwait(false);
            full[i] = [.. context.Logits];
        }

        // The KL each level adds over raw, measured on this model: what the controller is told.
        rate(1e11);
        var codecKl = new Dictionary<KvCodecSpec, double>();
        var rawKl = 0.0;
        for (var i = 0; i < cases.Count; i++)
        {
            rawKl += await KlAsync(root, cases[i], full[i], ct).ConfigureAwait(false);
        }

        foreach (var level in options.Levels)
        {
            var levelEngine = root.WithStore(new LevelStore(store, level));
            var kl = 0.0;
            for (var i = 0; i < cases.Count; i++)
            {
                kl += await KlAsync(levelEngine, cases[i], full[i], ct).ConfigureAwait(false);
            }

            codecKl[level] = Math.Max(0, (kl - rawKl) / cases.Count);
        }

        var loading = new LoadingOptions { Tier = remote.Name, StoredCodec = KvCodecSpec.Raw, Levels = options.Levels, CodecKl = codecKl, RefreshAfter = TimeSpan.FromSeconds(1) };
        using var controllerRoot = new FusionEngine(model, store, engineOptions with { Loading = loading });
        var smallestEngine = root.WithStore(new LevelStore(store, smallest));

        // Warm-up at the middle rate: every policy once per case, so each cost is measured.
        var middle = options.GbitPerSecond[options.GbitPerSecond.Count / 2] * 1e9;
        rate(middle);
        var textTtft = new List<double>();
        for (var i = 0; i < cases.Count; i++)
        {
            await TimedAsync(root, Request(cases[i]), ct).ConfigureAwait(false);
            await TimedAsync(smallestEngine, Request(cases[i]), ct).ConfigureAwait(false);
            textTtft.Add((await TimedAsync(root.WithStore(new InMemoryKvStore()), Request(cases[i]), ct).ConfigureAwait(false)).Ms);
        }

        var deadline = options.Deadline ?? TimeSpan.FromMilliseconds(Median(textTtft));
        var points = new List<LoaderPoint>();
        var random = new Random(options.Seed);
        var total = options.GbitPerSecond.Count * options.Requests * Policies.Count;
        var done = 0;
        foreach (var gbit in options.GbitPerSecond)
        {
            var runs = new Dictionary<string, List<(double Ms, double Kl, IReadOnlyList<string> Choices, double Predicted)>>();
            foreach (var policy in Policies)
            {
                runs[policy] = [];
            }

            for (var r = 0; r < options.Requests; r++)
            {
                var i = r % cases.Count;
                var factor = Math.Exp(options.TraceSigma * Gaussian(random));
                foreach (var policy in Policies)
                {
                    rate(gbit * 1e9 * factor);
                    var request = Request(cases[i]);
                    var (engine, choices) = policy switch
                    {
                        "controller" => (controllerRoot, (IReadOnlyList<string>?)null),
                        "raw" => (root, Repeat("raw", cases[i].Chunks.Count)),
                        "smallest" => (smallestEngine, Repeat(smallest.ToString(), cases[i].Chunks.Count)),
                        _ => (root.WithStore(new InMemoryKvStore()), Repeat("text", cases[i].Chunks.Count)),
                    };
                    if (policy == "controller")
                    {
                        request = request with { Loading = new LoadGoal(Deadline: deadline, MaxMeanKl: ControllerBudget) };
                    }

                    var run = await TimedAsync(engine, request, ct).ConfigureAwait(false);
                    runs[policy].Add((run.Ms, NextTokenDivergence.Kl(full[i], run.Logits), choices ?? run.Report.Loading?.Choices ?? [], run.Report.Loading?.PredictedTtft?.TotalMilliseconds ?? double.NaN));
                    progress?.Report((++done, total));
                }
            }

            foreach (var policy in Policies)
            {
                var list = runs[policy];
                var ms = list.Select(x => x.Ms).ToList();
                var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var choice in list.SelectMany(x => x.Choices))
                {
                    var name = choice.Split('@')[0];
                    counts[name] = counts.GetValueOrDefault(name) + 1;
                }

                var predicted = list.Select(x => x.Predicted).Where(double.IsFinite).ToList();
                points.Add(new LoaderPoint(gbit, policy, Median(ms), Percentile(ms, 0.9), list.Average(x => x.Kl), list.Count(x => x.Ms <= deadline.TotalMilliseconds) / (double)list.Count, counts,
                    predicted.Count > 0 ? Median(predicted) : double.NaN));
            }
        }

        return new LoaderBenchmarkResult(points, deadline, codecKl);
    }

    /// <summary>A proxy on loopback in front of the one Redis server <paramref name="configuration"/> names.</summary>
    private static Networking.ThrottlingTcpProxy ProxyTo(string configuration)
    {
        var endpoint = configuration.Split(',')[0].Trim();
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port))
        {
            throw new ArgumentException($"The Redis address '{endpoint}' is not host:port.", nameof(configuration));
        }

        return new Networking.ThrottlingTcpProxy(endpoint[..colon], port);
    }

    private static FusionRequest Request(FusionCase c) => new()
    {
        Prefix = c.Prefix,
        Chunks = [.. c.Chunks.Select(ChunkInput.FromText)],
        Query = c.Query,
        Mode = FusionMode.Blend,
    };

    private static async Task<double> KlAsync(FusionEngine engine, FusionCase c, float[] full, CancellationToken ct)
    {
        using var context = await engine.FuseAsync(Request(c), ct).ConfigureAwait(false);
        return NextTokenDivergence.Kl(full, context.Logits);
    }

    private static async Task<(double Ms, float[] Logits, FusionReport Report)> TimedAsync(FusionEngine engine, FusionRequest request, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var context = await engine.FuseAsync(request, ct).ConfigureAwait(false);
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return (ms, [.. context.Logits], context.Report);
    }

    /// <summary>The level with the fewest bits (cachegen's highest level, then fp8, then lossless).</summary>
    private static KvCodecSpec Smallest(IReadOnlyList<KvCodecSpec> levels)
    {
        var best = levels[0];
        foreach (var level in levels)
        {
            if (Rank(level) > Rank(best))
            {
                best = level;
            }
        }

        return best;

        static int Rank(KvCodecSpec c) => c.Kind switch
        {
            KvCodecKind.CacheGen => 10 + c.Level,
            KvCodecKind.Fp8 => 5,
            KvCodecKind.Lz4 => 1,
            _ => 0,
        };
    }

    private static string[] Repeat(string name, int count) => [.. Enumerable.Repeat(name, count)];

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    /// <summary>A store that reads every chunk at one stored level (the fixed "always this level" policy).</summary>
    private sealed class LevelStore(IKvStore inner, KvCodecSpec level) : IKvStore
    {
        public ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) =>
            key.Kind == CacheEntryKind.Chunk ? inner.GetAsync(KvStoredLevels.At(key, level), cancellationToken) : inner.GetAsync(key, cancellationToken);

        public ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default) => inner.PutAsync(entry, cancellationToken);

        public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.RemoveAsync(key, cancellationToken);

        public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.ContainsAsync(key, cancellationToken);
    }
}
