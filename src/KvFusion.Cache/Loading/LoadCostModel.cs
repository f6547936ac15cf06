using System.Collections.Concurrent;
using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Loading;

/// <summary>
/// What loading costs on the running machine, measured from the requests as they run: each tier's latency and
/// bandwidth (seconds against bytes read), each codec's decode time (seconds against the fp16 bytes of KV decoded,
/// which does not depend on the model), and per model the time of a fusion's own pass and of computing a chunk alone
/// (seconds against token-layers computed).
/// Nothing is a constant: an estimate exists once <see cref="LoadCostModelOptions.MinSamples"/> observations of it
/// were made. Safe for concurrent use; one instance serves every model of a process.
/// </summary>
public sealed class LoadCostModel
{
    private readonly LoadCostModelOptions _options;
    private readonly ConcurrentDictionary<string, OnlineLinearFit> _tiers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<KvCodecSpec, OnlineLinearFit> _decode = new();
    private readonly ConcurrentDictionary<KvCodecSpec, OnlineLinearFit> _sizes = new();
    private readonly ConcurrentDictionary<string, long> _lastTransfer = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, OnlineLinearFit> _recompute = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, OnlineLinearFit> _prefill = new(StringComparer.Ordinal);

    /// <summary>Creates an empty model.</summary>
    public LoadCostModel(LoadCostModelOptions? options = null)
    {
        _options = options ?? new LoadCostModelOptions();
        _options.Validate();
    }

    /// <summary>Records that reading <paramref name="bytes"/> from <paramref name="tier"/> took <paramref name="elapsed"/>.</summary>
    public void ObserveTransfer(string tier, long bytes, TimeSpan elapsed)
    {
        ArgumentException.ThrowIfNullOrEmpty(tier);
        _tiers.GetOrAdd(tier, _ => new OnlineLinearFit(_options.Forgetting)).Observe(bytes, Seconds(elapsed));
        _lastTransfer[tier] = Environment.TickCount64;
    }

    /// <summary>How long ago a read of <paramref name="tier"/> was last observed; null when never.</summary>
    public TimeSpan? TransferAge(string tier) =>
        _lastTransfer.TryGetValue(tier, out var at) ? TimeSpan.FromMilliseconds(Environment.TickCount64 - at) : null;

    /// <summary>Records that decoding KV of <paramref name="fp16Bytes"/> (its fp16 size) stored with <paramref name="codec"/> took <paramref name="elapsed"/>.</summary>
    public void ObserveDecode(KvCodecSpec codec, long fp16Bytes, TimeSpan elapsed) =>
        _decode.GetOrAdd(codec, _ => new OnlineLinearFit(_options.Forgetting)).Observe(fp16Bytes, Seconds(elapsed));

    /// <summary>Records that KV of <paramref name="fp16Bytes"/> (its fp16 size) took <paramref name="storedBytes"/> as a container with <paramref name="codec"/>.</summary>
    public void ObserveStoredSize(KvCodecSpec codec, long fp16Bytes, long storedBytes) =>
        _sizes.GetOrAdd(codec, _ => new OnlineLinearFit(_options.Forgetting)).Observe(fp16Bytes, storedBytes);

    /// <summary>
    /// A codec's container size (fixed part: the header; per unit: bytes stored per fp16 byte), or null before enough
    /// containers of it were written or read. The controller sizes levels it has not read yet with it.
    /// </summary>
    public LinearEstimate? StoredSize(KvCodecSpec codec) => _sizes.TryGetValue(codec, out var fit) ? Estimate(fit) : null;

    /// <summary>Records that <paramref name="model"/> (its fingerprint) computed <paramref name="tokenLayers"/> token-layers (tokens × layers) in <paramref name="elapsed"/>.</summary>
    public void ObserveRecompute(string model, long tokenLayers, TimeSpan elapsed)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        _recompute.GetOrAdd(model, _ => new OnlineLinearFit(_options.Forgetting)).Observe(tokenLayers, Seconds(elapsed));
    }

    /// <summary>A tier's transfer cost (units: bytes), or null before enough reads were observed.</summary>
    public LinearEstimate? Transfer(string tier) => _tiers.TryGetValue(tier, out var fit) ? Estimate(fit) : null;

    /// <summary>A codec's decode cost (units: fp16 bytes of KV), or null before enough decodes were observed.</summary>
    public LinearEstimate? Decode(KvCodecSpec codec) => _decode.TryGetValue(codec, out var fit) ? Estimate(fit) : null;

    /// <summary>Records that <paramref name="model"/> computed a chunk alone, <paramref name="tokenLayers"/> token-layers, in <paramref name="elapsed"/>.</summary>
    public void ObservePrefill(string model, long tokenLayers, TimeSpan elapsed)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        _prefill.GetOrAdd(model, _ => new OnlineLinearFit(_options.Forgetting)).Observe(tokenLayers, Seconds(elapsed));
    }

    /// <summary>A model's cost of computing a chunk alone (units: token-layers), or null before enough were observed.</summary>
    public LinearEstimate? Prefill(string model) => _prefill.TryGetValue(model, out var fit) ? Estimate(fit) : null;

    /// <summary>A model's recompute cost (units: token-layers), or null before enough of its fusions were observed.</summary>
    public LinearEstimate? Recompute(string model) => _recompute.TryGetValue(model, out var fit) ? Estimate(fit) : null;

    /// <summary>The costs the controller plans <paramref name="model"/>'s requests with.</summary>
    public ILoadCosts For(string model)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        return new ModelCosts(this, model);
    }

    /// <summary>The tiers observed so far.</summary>
    public IReadOnlyCollection<string> Tiers => [.. _tiers.Keys];

    /// <summary>The codecs observed so far.</summary>
    public IReadOnlyCollection<KvCodecSpec> Codecs => [.. _decode.Keys];

    private LinearEstimate? Estimate(OnlineLinearFit fit)
    {
        var (intercept, slope, samples) = fit.Snapshot();
        return samples < _options.MinSamples ? null : new LinearEstimate(intercept, slope, samples);
    }

    private static double Seconds(TimeSpan elapsed) =>
        elapsed >= TimeSpan.Zero ? elapsed.TotalSeconds : throw new ArgumentOutOfRangeException(nameof(elapsed), elapsed, "An elapsed time cannot be negative.");

    private sealed class ModelCosts(LoadCostModel costs, string model) : ILoadCosts
    {
        public double? TransferSeconds(string tier, long bytes) => costs.Transfer(tier)?.Predict(bytes);

        public double? DecodeSeconds(KvCodecSpec codec, long fp16Bytes) => costs.Decode(codec)?.Predict(fp16Bytes);

        public double? RecomputeSeconds(double tokenLayers) => tokenLayers <= 0 ? 0 : costs.Recompute(model)?.Predict(tokenLayers);

        public double? PrefillSeconds(double tokenLayers) => tokenLayers <= 0 ? 0 : costs.Prefill(model)?.Predict(tokenLayers);
    }
}
