using System.Collections.Concurrent;
using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Loading;

/// <summary>
/// What loading costs on the running machine, measured from the requests as they run: each tier's latency and
/// bandwidth (seconds against bytes read), each codec's decode time (seconds against tokens decoded) and the
/// recompute time (seconds against token-layers computed). Nothing is a constant: an estimate exists once
/// <see cref="LoadCostModelOptions.MinSamples"/> observations of it were made. Safe for concurrent use.
/// </summary>
public sealed class LoadCostModel : ILoadCosts
{
    private readonly LoadCostModelOptions _options;
    private readonly ConcurrentDictionary<string, OnlineLinearFit> _tiers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<KvCodecSpec, OnlineLinearFit> _decode = new();
    private readonly OnlineLinearFit _recompute;

    /// <summary>Creates an empty model.</summary>
    public LoadCostModel(LoadCostModelOptions? options = null)
    {
        _options = options ?? new LoadCostModelOptions();
        _options.Validate();
        _recompute = new OnlineLinearFit(_options.Forgetting);
    }

    /// <summary>Records that reading <paramref name="bytes"/> from <paramref name="tier"/> took <paramref name="elapsed"/>.</summary>
    public void ObserveTransfer(string tier, long bytes, TimeSpan elapsed)
    {
        ArgumentException.ThrowIfNullOrEmpty(tier);
        _tiers.GetOrAdd(tier, _ => new OnlineLinearFit(_options.Forgetting)).Observe(bytes, Seconds(elapsed));
    }

    /// <summary>Records that decoding <paramref name="tokens"/> tokens of KV (all layers) with <paramref name="codec"/> took <paramref name="elapsed"/>.</summary>
    public void ObserveDecode(KvCodecSpec codec, long tokens, TimeSpan elapsed) =>
        _decode.GetOrAdd(codec, _ => new OnlineLinearFit(_options.Forgetting)).Observe(tokens, Seconds(elapsed));

    /// <summary>Records that computing <paramref name="tokenLayers"/> token-layers (tokens × layers) took <paramref name="elapsed"/>.</summary>
    public void ObserveRecompute(long tokenLayers, TimeSpan elapsed) => _recompute.Observe(tokenLayers, Seconds(elapsed));

    /// <summary>A tier's transfer cost (units: bytes), or null before enough reads were observed.</summary>
    public CostEstimate? Transfer(string tier) => _tiers.TryGetValue(tier, out var fit) ? Estimate(fit) : null;

    /// <summary>A codec's decode cost (units: tokens), or null before enough decodes were observed.</summary>
    public CostEstimate? Decode(KvCodecSpec codec) => _decode.TryGetValue(codec, out var fit) ? Estimate(fit) : null;

    /// <summary>The recompute cost (units: token-layers), or null before enough passes were observed.</summary>
    public CostEstimate? Recompute => Estimate(_recompute);

    /// <summary>The tiers observed so far.</summary>
    public IReadOnlyCollection<string> Tiers => [.. _tiers.Keys];

    /// <summary>The codecs observed so far.</summary>
    public IReadOnlyCollection<KvCodecSpec> Codecs => [.. _decode.Keys];

    double? ILoadCosts.TransferSeconds(string tier, long bytes) => Transfer(tier)?.Predict(bytes);

    double? ILoadCosts.DecodeSeconds(KvCodecSpec codec, int tokens) => Decode(codec)?.Predict(tokens);

    double? ILoadCosts.RecomputeSeconds(double tokenLayers) => tokenLayers <= 0 ? 0 : Recompute?.Predict(tokenLayers);

    private CostEstimate? Estimate(OnlineLinearFit fit)
    {
        var (intercept, slope, samples) = fit.Snapshot();
        return samples < _options.MinSamples ? null : new CostEstimate(intercept, slope, samples);
    }

    private static double Seconds(TimeSpan elapsed) =>
        elapsed >= TimeSpan.Zero ? elapsed.TotalSeconds : throw new ArgumentOutOfRangeException(nameof(elapsed), elapsed, "An elapsed time cannot be negative.");
}
