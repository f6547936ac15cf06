using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Sharing;

/// <summary>Settings of <see cref="SharingProfiler"/>.</summary>
public sealed record SharingProfilerOptions
{
    /// <summary>The quality budget: the chosen ranges' mean KL must be at most this fraction of full reuse's; in (0, 1].</summary>
    public double Budget { get; init; } = 1.0 / 3;

    /// <summary>
    /// Models with at most this many layers are searched exactly (every subset of layers, 2^L sets); deeper ones
    /// greedily. Exact is the true optimum of the measured cases, and cheap for shallow models; greedy needs about L²/2.
    /// </summary>
    public int ExactMaxLayers { get; init; } = 10;

    /// <summary>The deepest model an exact search may take (2^20 sets is already far too many to fuse).</summary>
    public const int MaxExactLayers = 20;

    /// <summary>The sink chunks are precomputed behind (null: the engine's default).</summary>
    public SinkKind? Sink { get; init; }

    /// <summary>Greedy tokens compared per case (quality is the KL over the teacher-forced answer).</summary>
    public int GreedyTokens { get; init; } = 8;

    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range.</exception>
    public void Validate()
    {
        if (!(Budget > 0 && Budget <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(Budget), Budget, "The budget is a fraction of full reuse's KL, in (0, 1].");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(ExactMaxLayers);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ExactMaxLayers, MaxExactLayers);
        ArgumentOutOfRangeException.ThrowIfLessThan(GreedyTokens, 1);
    }
}

/// <summary>
/// Profiles cross-model sharing for one pair (DroidSpeak): on a case set, measures the receiver's quality loss
/// against its own full prefill (mean KL over the answer tokens) for recompute sets, and picks the cheapest
/// contiguous ranges within the budget. Cost is the number of layers recomputed, then the number of ranges (each is
/// one more restart from the E-cache). The sender stores its chunks with the E-cache of every layer, so any range can
/// start anywhere; the chosen ranges say which layers a sender must keep in production.
/// </summary>
public sealed class SharingProfiler
{
    private readonly TransformerModel _sender;
    private readonly TransformerModel _receiver;
    private readonly SharingProfilerOptions _options;

    /// <summary>Creates a profiler for caches of <paramref name="sender"/> used by <paramref name="receiver"/>.</summary>
    /// <exception cref="FusionException">The models are not one family (<see cref="FusionError.IncompatibleModels"/>).</exception>
    public SharingProfiler(TransformerModel sender, TransformerModel receiver, SharingProfilerOptions? options = null)
    {
        _sender = sender ?? throw new ArgumentNullException(nameof(sender));
        _receiver = receiver ?? throw new ArgumentNullException(nameof(receiver));
        _options = options ?? new SharingProfilerOptions();
        _options.Validate();
        var compatibility = ModelCompatibility.Check(sender.Config, sender.Fingerprint, receiver.Config, receiver.Fingerprint);
        if (!compatibility.IsCompatible)
        {
            throw new FusionException(FusionError.IncompatibleModels, $"{Name(receiver)} cannot use caches of {Name(sender)}: {compatibility.Reason}.");
        }
    }

    /// <summary>Whether the search will be exact for this pair.</summary>
    public bool IsExact => _receiver.Config.LayerCount <= _options.ExactMaxLayers;

    /// <summary>Measures and chooses; progress counts fused (case, set) pairs.</summary>
    public async Task<SharingProfile> ProfileAsync(IReadOnlyList<FusionCase> cases, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cases);
        if (cases.Count == 0)
        {
            throw new ArgumentException("Profiling needs at least one case.", nameof(cases));
        }

        var layers = _receiver.Config.LayerCount;
        using var senderEngine = new FusionEngine(_sender, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [.. Enumerable.Range(1, layers - 1)] });
        using var receiverEngine = new FusionEngine(_receiver, new InMemoryKvStore());
        var evaluator = new FusionEvaluator(receiverEngine, new FusionEvaluationOptions { Sender = senderEngine, Sink = _options.Sink, TtftRuns = 1, GreedyTokens = _options.GreedyTokens });
        var measured = new Dictionary<RecomputeRanges, SharingCandidate>();
        // Exact: every subset. Greedy: the sensitivities, then about L/2 growth steps of L sets (an estimate for the bar).
        var expected = cases.Count * (IsExact ? 1 << layers : 1 + layers + (layers * (layers + 1) / 2) + (layers * layers / 2));
        var order = new List<SharingCandidate>();

        async Task MeasureAsync(IReadOnlyList<RecomputeRanges> sets)
        {
            var fresh = sets.Where(s => !measured.ContainsKey(s)).Distinct().ToList();
            if (fresh.Count == 0)
            {
                return;
            }

            // Full comes first: the reference of the KL, and the TTFT every set's ratio is taken to.
            List<FusionModeSpec> modes = [new FusionModeSpec(FusionMode.Full, 1), .. fresh.Select(s => new FusionModeSpec(FusionMode.Share, BlendOptions.DefaultRatio, null, s))];
            var offset = order.Count * cases.Count;
            var inner = progress is null ? null : new Progress(progress, offset, fresh.Count * cases.Count, Math.Max(expected, offset + (fresh.Count * cases.Count)));
            var results = await evaluator.EvaluateAsync(cases, modes, inner, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < fresh.Count; i++)
            {
                var candidate = new SharingCandidate(fresh[i], results[i + 1].MeanKl, results[i + 1].TtftRatioToFull);
                measured[fresh[i]] = candidate;
                order.Add(candidate);
            }
        }

        var none = RecomputeRanges.None;
        var reusedAlone = Enumerable.Range(0, layers).Select(l => Without(layers, l, l)).ToList();
        var reusedRanges = new List<(LayerRange Range, RecomputeRanges Set)>();
        for (var a = 0; a < layers; a++)
        {
            for (var b = a; b < layers; b++)
            {
                reusedRanges.Add((new LayerRange(a, b), Without(layers, a, b)));
            }
        }

        RecomputeRanges chosen;
        if (IsExact)
        {
            var all = new List<RecomputeRanges>(1 << layers);
            for (var mask = 0; mask < 1 << layers; mask++)
            {
                all.Add(FromMask(mask, layers));
            }

            await MeasureAsync(all).ConfigureAwait(false);
            var limit = measured[none].MeanKl * _options.Budget;
            chosen = measured.Values.Where(c => c.MeanKl <= limit)
                .OrderBy(c => c.Recompute.LayerCount).ThenBy(c => c.Recompute.Ranges.Count).ThenBy(c => c.MeanKl)
                .First().Recompute;
        }
        else
        {
            await MeasureAsync([none, .. reusedAlone, .. reusedRanges.Select(r => r.Set)]).ConfigureAwait(false);
            var limit = measured[none].MeanKl * _options.Budget;
            var set = new bool[layers];
            chosen = none;
            while (measured[chosen].MeanKl > limit && chosen.LayerCount < layers)
            {
                // Add the layer whose recompute lowers the KL most (DroidSpeak's greedy growth of the recompute set).
                var grown = new List<RecomputeRanges>();
                for (var l = 0; l < layers; l++)
                {
                    if (!set[l])
                    {
                        set[l] = true;
                        grown.Add(FromLayers(set));
                        set[l] = false;
                    }
                }

                await MeasureAsync(grown).ConfigureAwait(false);
                chosen = grown.OrderBy(g => measured[g].MeanKl).First();
                for (var l = 0; l < layers; l++)
                {
                    set[l] = chosen.Contains(l);
                }
            }
        }

        return new SharingProfile
        {
            SenderName = Name(_sender),
            ReceiverName = Name(_receiver),
            Sender = _sender.Fingerprint,
            Receiver = _receiver.Fingerprint,
            LayerCount = layers,
            Cases = cases.Count,
            Search = IsExact ? "exact" : "greedy",
            Budget = _options.Budget,
            ReuseKl = measured[none].MeanKl,
            Recompute = chosen,
            RecomputeKl = measured[chosen].MeanKl,
            LayerSensitivity = [.. reusedAlone.Select(s => measured[s].MeanKl)],
            RangeSensitivity = [.. reusedRanges.Select(r => (r.Range, measured[r.Set].MeanKl))],
            Candidates = order,
        };
    }

    /// <summary>Every layer recomputed but [a, b]: the set under which only that range reuses the sender's K/V.</summary>
    private static RecomputeRanges Without(int layers, int a, int b)
    {
        var set = new bool[layers];
        for (var l = 0; l < layers; l++)
        {
            set[l] = l < a || l > b;
        }

        return FromLayers(set);
    }

    /// <summary>The layers of <paramref name="mask"/>'s set bits (exact search: at most 20 layers).</summary>
    private static RecomputeRanges FromMask(int mask, int layers)
    {
        var set = new bool[layers];
        for (var l = 0; l < layers; l++)
        {
            set[l] = (mask & (1 << l)) != 0;
        }

        return FromLayers(set);
    }

    /// <summary>The ranges of the recomputed layers (runs of true).</summary>
    internal static RecomputeRanges FromLayers(ReadOnlySpan<bool> recomputed)
    {
        var ranges = new List<LayerRange>();
        var l = 0;
        while (l < recomputed.Length)
        {
            if (!recomputed[l])
            {
                l++;
                continue;
            }

            var first = l;
            while (l + 1 < recomputed.Length && recomputed[l + 1])
            {
                l++;
            }

            ranges.Add(new LayerRange(first, l));
            l++;
        }

        return new RecomputeRanges(ranges);
    }

    private static string Name(TransformerModel model) => Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Directory));

    /// <summary>Maps one evaluation's progress into the whole profile's.</summary>
    private sealed class Progress(IProgress<(int Done, int Total)> outer, int offset, int count, int total) : IProgress<(int Done, int Total)>
    {
        // Scaled: the evaluation also counts its full reference, the profile only the sets.
        public void Report((int Done, int Total) value) => outer.Report((offset + (int)((long)value.Done * count / Math.Max(1, value.Total)), total));
    }
}
