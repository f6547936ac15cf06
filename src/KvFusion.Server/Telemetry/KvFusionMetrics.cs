using System.Diagnostics.Metrics;
using KvFusion.Cache.Fusion;
using KvFusion.Server.Hosting;
using KvFusion.Server.Inference;

namespace KvFusion.Server.Telemetry;

/// <summary>
/// The service's instruments (meter <see cref="MeterName"/>), exported for Prometheus at <c>/metrics</c>: TTFT,
/// tokens reused, recomputed and generated, queue depth, hits of every storage tier, and host memory's misses, bytes
/// and evictions.
/// </summary>
public sealed class KvFusionMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "KvFusion.Server";

    private readonly Meter _meter;
    private readonly Histogram<double> _ttft;
    private readonly Counter<long> _reused;
    private readonly Counter<long> _recomputed;
    private readonly Counter<long> _generated;
    private readonly Counter<long> _chunksPrecomputed;
    private readonly Counter<long> _gateDecisions;
    private readonly Histogram<double> _estimatedKl;

    /// <summary>Creates the instruments.</summary>
    public KvFusionMetrics(IMeterFactory meters, IRequestScheduler queue, ModelRuntimeHost runtime)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        _ttft = _meter.CreateHistogram<double>("kvfusion.ttft", "s", "Time from a completion request's arrival to its first token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _reused = _meter.CreateCounter<long>("kvfusion.tokens.reused", "{token}", "Prompt tokens whose stored KV was loaded instead of computed.");
        _recomputed = _meter.CreateCounter<long>("kvfusion.tokens.recomputed", "{token}", "Prompt tokens computed in the last layer.");
        _generated = _meter.CreateCounter<long>("kvfusion.tokens.generated", "{token}", "Completion tokens generated.");
        _chunksPrecomputed = _meter.CreateCounter<long>("kvfusion.chunks.precomputed", "{chunk}", "Chunks precomputed while fusing a request (store misses).");
        _gateDecisions = _meter.CreateCounter<long>("kvfusion.quality.decisions", "{request}", "Blend requests by the quality gate's decision (unchecked, passed, ratio_raised, fell_back_to_full).");
        _estimatedKl = _meter.CreateHistogram<double>("kvfusion.quality.estimated_kl", "1", "Blend's estimated KL from full at the ratio asked for.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2] });
        _meter.CreateObservableGauge("kvfusion.queue.waiting", () => queue.Waiting, "{request}", "Requests waiting for a place on the engine.");
        _meter.CreateObservableGauge("kvfusion.queue.active", () => queue.Active, "{request}", "Requests on the engine.");
        _meter.CreateObservableCounter("kvfusion.tier.hits", () => Hits(runtime), "{read}", "Reads a storage tier answered.");
        _meter.CreateObservableCounter("kvfusion.tier.misses", () => Tiers(runtime, s => s.Misses), "{read}", "Reads host memory did not hold.");
        _meter.CreateObservableCounter("kvfusion.tier.evictions", () => Tiers(runtime, s => s.Evictions), "{entry}", "Entries evicted from host memory.");
        _meter.CreateObservableGauge("kvfusion.tier.bytes", () => Tiers(runtime, s => s.Bytes), "By", "Bytes held by host memory.");
        _meter.CreateObservableGauge("kvfusion.tier.entries", () => Tiers(runtime, s => s.Entries), "{entry}", "Entries held by host memory.");
        _meter.CreateObservableGauge("kvfusion.tier.pending_writes", () => Pending(runtime), "{entry}", "Writes queued for a lower tier.");
        _meter.CreateObservableGauge("kvfusion.tier.up", () => Up(runtime), "1", "1 when a lower tier answers, 0 when it is down.");
    }

    /// <summary>Records one fusion and its TTFT.</summary>
    public void RecordFusion(FusionReport report, double ttftMs)
    {
        ArgumentNullException.ThrowIfNull(report);
        var mode = new KeyValuePair<string, object?>("mode", report.Mode);
        _ttft.Record(ttftMs / 1000, mode);
        _reused.Add(report.ReusedTokens, mode);
        _recomputed.Add(report.RecomputedPerLayer.Count == 0 ? report.TotalTokens : report.RecomputedPerLayer[^1], mode);
        if (report.ChunksPrecomputed > 0)
        {
            _chunksPrecomputed.Add(report.ChunksPrecomputed);
        }

        if (report.Quality is { } quality)
        {
            _gateDecisions.Add(1, new KeyValuePair<string, object?>("decision", FusionQuality.NameOf(quality.Decision)));
            _estimatedKl.Record(quality.RequestedEstimatedKl);
        }
    }

    /// <summary>Records generated tokens.</summary>
    public void RecordGenerated(int tokens) => _generated.Add(tokens);

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> Tiers(ModelRuntimeHost host, Func<KvFusion.Cache.Tiers.KvTierStatistics, long> value)
    {
        if (host.TryGetRuntime() is not { } runtime)
        {
            yield break;
        }

        var stats = runtime.Storage.Manager.Memory.Statistics();
        yield return new Measurement<long>(value(stats), new KeyValuePair<string, object?>("tier", stats.Tier));
    }

    // Host memory counts its own hits; the manager counts the hits of each lower tier (reads memory missed).
    private static IEnumerable<Measurement<long>> Hits(ModelRuntimeHost host)
    {
        if (host.TryGetRuntime() is not { } runtime)
        {
            yield break;
        }

        var memory = runtime.Storage.Manager.Memory.Statistics();
        yield return new Measurement<long>(memory.Hits, new KeyValuePair<string, object?>("tier", memory.Tier));
        foreach (var t in runtime.Storage.Manager.GetStatistics().Tiers)
        {
            yield return new Measurement<long>(t.Hits, new KeyValuePair<string, object?>("tier", t.Tier));
        }
    }

    private static IEnumerable<Measurement<long>> Pending(ModelRuntimeHost host)
    {
        if (host.TryGetRuntime() is not { } runtime)
        {
            yield break;
        }

        foreach (var t in runtime.Storage.Manager.GetStatistics().Tiers)
        {
            yield return new Measurement<long>(t.QueuedWrites, new KeyValuePair<string, object?>("tier", t.Tier));
        }
    }

    private static IEnumerable<Measurement<int>> Up(ModelRuntimeHost host)
    {
        if (host.TryGetRuntime() is not { } runtime)
        {
            yield break;
        }

        foreach (var t in runtime.Storage.Manager.GetStatistics().Tiers)
        {
            yield return new Measurement<int>(t.State == KvFusion.Cache.Tiers.KvTierState.Up ? 1 : 0, new KeyValuePair<string, object?>("tier", t.Tier));
        }
    }
}
