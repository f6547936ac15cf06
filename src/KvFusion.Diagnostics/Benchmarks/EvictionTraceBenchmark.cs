using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>Settings of the eviction trace: a catalogue of chunk caches and a skewed stream of lookups over it.</summary>
public sealed record EvictionTraceOptions
{
    /// <summary>Distinct chunk caches in the catalogue.</summary>
    public int Entries { get; init; } = 4000;

    /// <summary>Lookups in the trace.</summary>
    public int Accesses { get; init; } = 200_000;

    /// <summary>Zipf exponent of chunk popularity (about 1 for retrieval over a document set).</summary>
    public double ZipfExponent { get; init; } = 1.0;

    /// <summary>Share of lookups for chunks never seen before and never again (fresh documents, one-off tool output).</summary>
    public double OneOffShare { get; init; } = 0.1;

    /// <summary>Memory budgets, as percentages of the catalogue's total bytes.</summary>
    public IReadOnlyList<double> BudgetPercents { get; init; } = [5, 10, 25];

    /// <summary>Seed of the catalogue and the trace.</summary>
    public int Seed { get; init; } = 20261202;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (Entries < 10)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(Entries)} must be at least 10; got {Entries}."));
        }

        if (Accesses < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(Accesses)} must be at least 1; got {Accesses}."));
        }

        if (!(ZipfExponent > 0 && ZipfExponent <= 3))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(ZipfExponent)} must be in (0, 3]; got {ZipfExponent}."));
        }

        if (!(OneOffShare >= 0 && OneOffShare < 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(OneOffShare)} must be in [0, 1); got {OneOffShare}."));
        }

        if (BudgetPercents is not { Count: > 0 } || BudgetPercents.Any(p => !(p > 0 && p <= 100)))
        {
            throw new ArgumentException($"{nameof(BudgetPercents)} must hold percentages in (0, 100].");
        }
    }
}

/// <summary>One policy at one budget over the trace.</summary>
public sealed record EvictionTraceRow
{
    /// <summary>The budget as a percentage of the catalogue's bytes.</summary>
    public required double BudgetPercent { get; init; }

    /// <summary>The budget in bytes.</summary>
    public required long BudgetBytes { get; init; }

    /// <summary>The policy.</summary>
    public required HostMemoryEvictionPolicy Policy { get; init; }

    /// <summary>Lookups that hit.</summary>
    public required double HitRate { get; init; }

    /// <summary>Share of the trace's total recompute cost that hits saved (the number prefill time follows).</summary>
    public required double CostSaved { get; init; }

    /// <summary>Share of the looked-up bytes that hit.</summary>
    public required double ByteHitRate { get; init; }

    /// <summary>Evictions during the trace.</summary>
    public required long Evictions { get; init; }
}

/// <summary>The trace's results, cost-aware and LRU side by side per budget.</summary>
public sealed record EvictionTraceReport
{
    /// <summary>The settings.</summary>
    public required EvictionTraceOptions Options { get; init; }

    /// <summary>Total bytes of the catalogue.</summary>
    public required long CatalogueBytes { get; init; }

    /// <summary>How the catalogue's entries are stored (codec → share of entries, bytes per token relative to fp16).</summary>
    public required IReadOnlyList<(string Codec, double Share, double RelativeBytes)> CodecMix { get; init; }

    /// <summary>One row per budget and policy.</summary>
    public required IReadOnlyList<EvictionTraceRow> Rows { get; init; }
}

/// <summary>
/// Replays a skewed lookup trace against the real <see cref="HostMemoryTier"/> under each eviction policy: a miss
/// recomputes the chunk and puts it, as the fusion engine does. The catalogue mixes chunk lengths (64 to 2048 tokens,
/// log-uniform) and the codecs the tiers store (sizes per token from <c>bench codec</c>), so entries differ in
/// recompute cost per byte, which is what the cost-aware policy weighs. Sizes are those of a 24-layer model with 2
/// KV heads of 64 (Qwen2-0.5B's KV shape), scaled down 64 times so the trace fits in little memory; only ratios matter.
/// </summary>
public static class EvictionTraceBenchmark
{
    // Share of entries and bytes per token relative to fp16: raw, lz4 (1.18x), cachegen 1/2/3 (5.1x, 7.6x, 12.8x),
    // from docs/results/bench-codec.json.
    private static readonly (string Codec, double Share, double RelativeBytes)[] Mix =
    [
        ("raw", 0.30, 1.0),
        ("lz4", 0.20, 1 / 1.18),
        ("cachegen:1", 0.20, 1 / 5.06),
        ("cachegen:2", 0.15, 1 / 7.6),
        ("cachegen:3", 0.15, 1 / 12.8),
    ];

    private const int Layers = 24;
    private const int KvHeads = 2;
    private const int HeadDim = 64;
    private const int SizeScale = 64;

    /// <summary>Runs every budget under both policies.</summary>
    public static EvictionTraceReport Run(EvictionTraceOptions options, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var rng = new Random(options.Seed);
        var catalogue = new Item[options.Entries];
        var total = 0L;
        for (var i = 0; i < catalogue.Length; i++)
        {
            catalogue[i] = NewItem(rng, i);
            total += catalogue[i].Blob.Length;
        }

        var trace = Trace(options, rng);
        var rows = new List<EvictionTraceRow>();
        var done = 0;
        foreach (var percent in options.BudgetPercents)
        {
            var budget = Math.Max(1, (long)(total * percent / 100));
            foreach (var policy in new[] { HostMemoryEvictionPolicy.CostAware, HostMemoryEvictionPolicy.Lru })
            {
                rows.Add(Replay(catalogue, trace, options.Seed, percent, budget, policy));
                progress?.Report(++done);
            }
        }

        return new EvictionTraceReport { Options = options, CatalogueBytes = total, CodecMix = Mix, Rows = rows };
    }

    /// <summary>Writes the report as JSON properties of the open object.</summary>
    public static void WriteJson(Utf8JsonWriter writer, EvictionTraceReport report)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(report);
        var o = report.Options;
        writer.WriteNumber("entries", o.Entries);
        writer.WriteNumber("accesses", o.Accesses);
        writer.WriteNumber("zipf_exponent", o.ZipfExponent);
        writer.WriteNumber("one_off_share", o.OneOffShare);
        writer.WriteNumber("seed", o.Seed);
        writer.WriteNumber("catalogue_bytes", report.CatalogueBytes);
        writer.WriteString("kv_shape", $"{Layers} layers x {KvHeads} kv heads x {HeadDim}, sizes / {SizeScale}");
        writer.WriteStartArray("codec_mix");
        foreach (var (codec, share, relative) in report.CodecMix)
        {
            writer.WriteStartObject();
            writer.WriteString("codec", codec);
            writer.WriteNumber("share", share);
            writer.WriteNumber("relative_bytes", relative);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("rows");
        foreach (var r in report.Rows)
        {
            writer.WriteStartObject();
            writer.WriteNumber("budget_percent", r.BudgetPercent);
            writer.WriteNumber("budget_bytes", r.BudgetBytes);
            writer.WriteString("policy", r.Policy == HostMemoryEvictionPolicy.CostAware ? "cost-aware" : "lru");
            writer.WriteNumber("hit_rate", r.HitRate);
            writer.WriteNumber("cost_saved", r.CostSaved);
            writer.WriteNumber("byte_hit_rate", r.ByteHitRate);
            writer.WriteNumber("evictions", r.Evictions);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static EvictionTraceRow Replay(Item[] catalogue, int[] trace, int seed, double percent, long budget, HostMemoryEvictionPolicy policy)
    {
        var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = budget, EvictionPolicy = policy });
        // One-off items are drawn from their own seeded stream, the same for both policies.
        var oneOffs = new Random(seed ^ 0x5eed);
        long hits = 0, hitBytes = 0, bytes = 0;
        double hitCost = 0, cost = 0;
        var nextOneOff = catalogue.Length;
        foreach (var index in trace)
        {
            var item = index >= 0 ? catalogue[index] : NewItem(oneOffs, nextOneOff++);
            bytes += item.Blob.Length;
            cost += item.Cost;
            if (tier.TryGet(item.Key, out _))
            {
                hits++;
                hitBytes += item.Blob.Length;
                hitCost += item.Cost;
            }
            else
            {
                tier.TryPut(item.Key, item.Blob, item.Cost);
            }
        }

        var stats = tier.Statistics();
        return new EvictionTraceRow
        {
            BudgetPercent = percent,
            BudgetBytes = budget,
            Policy = policy,
            HitRate = (double)hits / trace.Length,
            CostSaved = hitCost / cost,
            ByteHitRate = (double)hitBytes / bytes,
            Evictions = stats.Evictions,
        };
    }

    /// <summary>Catalogue indices by Zipf popularity over a shuffled order, with -1 for a one-off lookup.</summary>
    private static int[] Trace(EvictionTraceOptions options, Random rng)
    {
        var n = options.Entries;
        var cumulative = new double[n];
        var sum = 0.0;
        for (var r = 0; r < n; r++)
        {
            sum += 1 / Math.Pow(r + 1, options.ZipfExponent);
            cumulative[r] = sum;
        }

        // Popularity rank → entry, shuffled so popularity is independent of length and codec.
        var byRank = new int[n];
        for (var i = 0; i < n; i++)
        {
            byRank[i] = i;
        }

        rng.Shuffle(byRank);
        var trace = new int[options.Accesses];
        for (var t = 0; t < trace.Length; t++)
        {
            if (rng.NextDouble() < options.OneOffShare)
            {
                trace[t] = -1;
                continue;
            }

            var u = rng.NextDouble() * sum;
            var rank = Array.BinarySearch(cumulative, u);
            trace[t] = byRank[Math.Min(n - 1, rank < 0 ? ~rank : rank)];
        }

        return trace;
    }

    private static Item NewItem(Random rng, int index)
    {
        var tokens = (int)Math.Round(64 * Math.Pow(32, rng.NextDouble()));
        var pick = rng.NextDouble();
        var relative = Mix[^1].RelativeBytes;
        foreach (var (_, share, rel) in Mix)
        {
            if (pick < share)
            {
                relative = rel;
                break;
            }

            pick -= share;
        }

        var fp16 = 4.0 * Layers * KvHeads * HeadDim * tokens;
        var cost = fp16 * (1 + (tokens / KvRecomputeCost.AttentionTokenScale)) / SizeScale;
        var size = Math.Max(1, (int)(fp16 * relative / SizeScale));
        var key = new TierKey(new KvNamespace(KvNamespace.DefaultTenant, "00"), new CacheKey(CacheEntryKind.Chunk, index.ToString("x16", CultureInfo.InvariantCulture), "sink:bos"));
        return new Item(key, new byte[size], cost);
    }

    private sealed record Item(TierKey Key, byte[] Blob, double Cost);
}
