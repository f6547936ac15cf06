using System.Diagnostics;
using System.Runtime.InteropServices;
using KvFusion.Cache.Fusion.Blend;
using KvFusion.Cache.Fusion.Planning;
using KvFusion.Cache.Sharing;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>
/// <c>blend</c> (CacheBlend): one layer-stepped pass over everything after the reused prefix blocks, with the chunks'
/// stored KV imported; at each check layer the chunk tokens are scored and only the selected ones (and the query and
/// uncached prefix) go on through the later layers. Over another model's caches (<see cref="Planning.FusionPlan.SharedFrom"/>),
/// the sender's profiled ranges are recomputed for every chunk token before blend's pass. The pass measures blend's
/// quality signal; with a floor, a prompt estimated above it is fused once more at the ratio the signal says the floor
/// needs (up to the gate's limit), or prefilled in full.
/// </summary>
internal sealed class BlendModeRunner(ChunkCaches chunkCaches, PrefixBlocks prefixBlocks, QualityCalibration calibration) : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Blend;

    public async Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var blend = run.Blend.FitTo(run.LayerCount);
        blend.Validate(run.LayerCount);
        var sw = Stopwatch.StartNew();
        var precomputed = await chunkCaches.EnsureAsync(plan, cancellationToken).ConfigureAwait(false);
        stages["precompute"] = sw.Elapsed;
        var requestedRatio = blend.Steps()[^1].Ratio;
        var ratio = requestedRatio;
        var discarded = TimeSpan.Zero;
        double? requestedEstimate = null;
        while (true)
        {
            var attempt = Stopwatch.StartNew();
            // A raised attempt recomputes its chunk tokens from layer 0 too: starting from the E-cache of chunks
            // computed alone caps how close blend gets to full, which is what the gate asks for.
            var attemptBlend = ratio == requestedRatio ? blend : blend.WithFinalRatio(ratio) with { StartFromHiddenStates = false };
            var (report, signal) = await FuseOnceAsync(run, attemptBlend, precomputed, cancellationToken).ConfigureAwait(false);
            if (plan.ChunkTokens == 0)
            {
                return report;
            }

            var estimate = calibration.Estimate(signal);
            requestedEstimate ??= estimate;
            QualityDecision? decision = blend.QualityFloor is not { } floor ? QualityDecision.Unchecked
                : estimate <= floor ? (ratio == requestedRatio ? QualityDecision.Passed : QualityDecision.RatioRaised)
                : null;
            if (decision is { } accepted)
            {
                if (discarded > TimeSpan.Zero)
                {
                    stages["gate"] = discarded;
                }

                return report with
                {
                    Quality = new FusionQuality
                    {
                        EstimatedKl = estimate,
                        Signal = signal,
                        RequestedEstimatedKl = requestedEstimate.Value,
                        Floor = blend.QualityFloor,
                        Decision = accepted,
                        Ratio = ratio,
                        RequestedRatio = requestedRatio,
                        Cost = discarded,
                    },
                };
            }

            // Above the floor: one more attempt at the ratio the signal says the floor needs, if that is within the
            // gate's limit; else (or when that attempt misses too) the prompt's own full prefill. Doubling step by
            // step cost more than full itself: three passes to reach 0.6.
            discarded += attempt.Elapsed;
            session.Reset();
            var needed = ratio == requestedRatio ? RatioFor(calibration.SignalFor(blend.QualityFloor!.Value), signal, ratio) : double.PositiveInfinity;
            if (needed > blend.GateMaxRatio)
            {
                return FallBackToFull(run, blend, precomputed, discarded, requestedEstimate.Value, requestedRatio, cancellationToken);
            }

            ratio = needed;
        }
    }

    /// <summary>
    /// The ratio at which a blend whose signal was <paramref name="signal"/> at <paramref name="ratio"/> should reach
    /// <paramref name="targetSignal"/>. The signal falls about as the square of the share left unrecomputed (measured on
    /// tiny-pydocs over ratios 0.15-0.6; docs/decisions.md), and the answer is raised by a fifth, since a second miss costs
    /// a full prefill on top.
    /// </summary>
    internal static double RatioFor(double targetSignal, double signal, double ratio)
    {
        if (signal <= 0 || targetSignal >= signal)
        {
            return ratio;
        }

        var left = (1 - ratio) * Math.Sqrt(Math.Max(0, targetSignal) / signal);
        return Math.Min(1, Math.Max(ratio * 1.2, (1 - left) * 1.2));
    }

    /// <summary>The prompt's own full prefill, answering a request no blend ratio brought within its floor.</summary>
    private static FusionReport FallBackToFull(FusionRun run, BlendOptions blend, int precomputed, TimeSpan discarded, double requestedEstimate, double requestedRatio, CancellationToken ct)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var sw = Stopwatch.StartNew();
        session.Prefill(plan.Tokens, run.Logits, cancellationToken: ct);
        stages.Remove("select");
        stages.Remove("store");
        stages["load"] = TimeSpan.Zero;
        stages["compute"] = sw.Elapsed;
        stages["gate"] = discarded;
        return plan.Report(0, Enumerable.Repeat(plan.Tokens.Length, run.LayerCount).ToArray()) with
        {
            ChunksPrecomputed = precomputed,
            Quality = new FusionQuality
            {
                EstimatedKl = 0,
                Signal = 0,
                RequestedEstimatedKl = requestedEstimate,
                Floor = blend.QualityFloor,
                Decision = QualityDecision.FellBackToFull,
                Ratio = 1,
                RequestedRatio = requestedRatio,
                Cost = discarded + sw.Elapsed,
            },
        };
    }

    /// <summary>One blend of the prompt into the (empty) session; returns its report and the quality signal its pass measured.</summary>
    private async Task<(FusionReport Report, double Signal)> FuseOnceAsync(FusionRun run, BlendOptions blend, int precomputed, CancellationToken cancellationToken)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var sw = Stopwatch.StartNew();
        var load = await prefixBlocks.LoadAsync(session, plan.Tokens, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();

        // Blend over another model's caches: its ranges are recomputed for every chunk token first (share), so blend's
        // selection recomputes its tokens in the layers the sender's K/V still fill. That recompute attends to the
        // prefix, so an uncached prefix is computed before it (and before the import, which moves the session's end)
        // rather than in blend's pass.
        var ranges = plan.SharedFrom?.Recompute ?? RecomputeRanges.None;
        var shareRanges = plan.Chunks.Count > 0 && ranges.LayerCount > 0;
        var fromHidden = StartsFromHiddenStates(blend, plan);
        var start = load.Loaded;
        if ((shareRanges || fromHidden) && start < plan.Prefix.Length)
        {
            session.Prefill(plan.Prefix.AsSpan(start), run.Logits, cancellationToken: cancellationToken);
            start = plan.Prefix.Length;
        }

        ChunkCaches.Import(session, plan);
        if (shareRanges)
        {
            ShareModeRunner.Recompute(session, plan, ranges, cancellationToken);
        }

        // Chunk tokens start at the first check layer from their E-cache; the query alone runs the layers below it.
        var firstLayer = fromHidden ? blend.Steps()[0].Layer : 0;
        var startHidden = fromHidden ? HiddenEnteringCheckLayer(session, plan, firstLayer, start, cancellationToken) : null;
        var shareTime = sw.Elapsed;

        // Rows of the pass: everything after the reused prefix blocks (and a prefix computed above). Row r is slot start + r.
        var rowCount = plan.Tokens.Length - start;
        var slots = new int[rowCount];
        for (var r = 0; r < rowCount; r++)
        {
            slots[r] = start + r;
        }

        var pass = session.BeginPass(plan.Tokens.AsSpan(start), slots, slots);
        if (startHidden is not null)
        {
            pass.StartAt(firstLayer, startHidden);
        }

        stages["load"] += sw.Elapsed - shareTime;
        var rows = new BlendRows(rowCount, plan.Prefix.Length - start, plan.Query.Length, [.. plan.Chunks.Select(c => c.Tokens.Length)], blend.ChunkHeadTokens);
        var report = new BlendReportBuilder(plan.ChunkTokens);
        var probe = new BlendQualityProbe(plan.Prefix.Length, plan.ChunkTokens);
        sw.Restart();
        var (recomputed, selectTime) = ComputeLayers(pass, session, blend, rows, report, probe, firstLayer, cancellationToken);
        pass.ComputeLogits(pass.RowCount - 1, run.Logits);
        stages["compute"] = sw.Elapsed - selectTime + shareTime;
        for (var l = 0; l < recomputed.Length; l++)
        {
            recomputed[l] += (start - load.Loaded) + (ranges.Contains(l) ? plan.ChunkTokens : 0) + (l < firstLayer ? plan.Query.Length : 0);
        }

        stages["select"] = selectTime;
        sw.Restart();
        await prefixBlocks.StoreAsync(session, plan.Tokens, load, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        var fused = report.Complete(plan.Report(plan.ChunkTokens + load.Loaded, recomputed) with
        {
            ChunksPrecomputed = precomputed,
            PrefixBlocksReused = load.Blocks,
            StartedFromHiddenStates = fromHidden,
        });
        return (fused, probe.Signal);
    }

    /// <summary>
    /// Whether chunk tokens start at the first check layer from their E-cache: when asked, and not when that check
    /// keeps every token (recomputing all of them is full's answer, which the E-cache of chunks computed alone is not)
    /// nor when a chunk was stored without that layer's E-cache (the layers below are then recomputed for it, as
    /// without the switch), nor over another model's caches whose ranges are recomputed first (their recompute already
    /// rewrote those layers from the receiver's own states, which the sender's E-cache would undo).
    /// </summary>
    private static bool StartsFromHiddenStates(BlendOptions blend, FusionPlan plan)
    {
        var first = blend.Steps()[0];
        return blend.StartFromHiddenStates && plan.Chunks.Count > 0 && first.Ratio < 1
            && (plan.SharedFrom?.Recompute.LayerCount ?? 0) == 0
            && ChunkCaches.HaveHiddenStates(plan, first.Layer);
    }

    /// <summary>
    /// Runs every layer, selecting at the check layers and measuring the quality signal in every layer after the
    /// first check layer; returns the rows computed per layer and the selection time (the signal's included).
    /// </summary>
    private static (int[] Recomputed, TimeSpan SelectTime) ComputeLayers(
        ForwardPass pass, InferenceSession session, BlendOptions blend, BlendRows rows, BlendReportBuilder report, BlendQualityProbe probe, int firstLayer, CancellationToken ct)
    {
        var layers = session.Model.Config.LayerCount;
        var policy = new BlendCommitPolicy(blend);
        var steps = blend.Steps();
        var stepIndex = 0;
        var recomputed = new int[layers];
        var selectTime = TimeSpan.Zero;
        var probeWatch = new Stopwatch();
        for (var l = firstLayer; l < layers; l++)
        {
            ct.ThrowIfCancellationRequested();
            pass.ComputeQkv(l);
            var probed = l > steps[0].Layer && rows.QueryRows.Length > 0;
            if (stepIndex < steps.Count && steps[stepIndex].Layer == l)
            {
                var selectWatch = Stopwatch.StartNew();
                Select(pass, session, l, steps[stepIndex], blend, policy, rows, report);
                stepIndex++;
                selectTime += selectWatch.Elapsed;
            }
            else
            {
                policy.CommitLayer(pass, l, rows);
            }

            if (probed)
            {
                probeWatch.Start();
                probe.Measure(pass, session, rows);
                probeWatch.Stop();
            }

            recomputed[l] = pass.RowCount;
            pass.CompleteLayer(l);
        }

        return (recomputed, selectTime + probeWatch.Elapsed);
    }

    /// <summary>
    /// The hidden states entering <paramref name="layer"/> of every row after <paramref name="start"/>: the chunks'
    /// stored E-cache, then the query's, computed here through the layers below against the stored chunk K/V.
    /// </summary>
    private static float[] HiddenEnteringCheckLayer(InferenceSession session, FusionPlan plan, int layer, int start, CancellationToken ct)
    {
        if (start != plan.Prefix.Length)
        {
            throw new InvalidOperationException($"The pass starts at slot {start}, not after the prefix ({plan.Prefix.Length}).");
        }

        var hiddenSize = session.Model.Config.HiddenSize;
        var hidden = new float[(plan.ChunkTokens + plan.Query.Length) * hiddenSize];
        var at = ChunkCaches.CopyHiddenStates(plan, layer, hiddenSize, hidden);
        var querySlots = new int[plan.Query.Length];
        var queryStart = plan.Tokens.Length - plan.Query.Length;
        for (var r = 0; r < querySlots.Length; r++)
        {
            querySlots[r] = queryStart + r;
        }

        var pass = session.BeginPass(plan.Query, querySlots, querySlots);
        for (var l = 0; l < layer; l++)
        {
            ct.ThrowIfCancellationRequested();
            pass.RunLayer(l);
        }

        pass.DownloadHidden(hidden.AsSpan(at));
        return hidden;
    }

    /// <summary>One check layer: score the chunk tokens, keep the top ones, commit K/V, drop the other rows.</summary>
    private static void Select(
        ForwardPass pass, InferenceSession session, int layer, SelectionStep step, BlendOptions blend, BlendCommitPolicy policy, BlendRows rows, BlendReportBuilder report)
    {
        var criterion = step.Criterion ?? blend.Criterion;
        var deviation = BlendScorer.Deviation(pass, blend.Deviation);
        var committedAll = policy.CommitBeforeScoring(pass, layer, criterion);
        var attention = BlendScorer.QueryAttention(pass, session, rows.QueryRows, criterion);
        var (candidates, others) = rows.Partition(pass.RowCount);
        var scores = BlendScorer.Scores(criterion, deviation, attention, pass.Slots, candidates);

        // Forced chunk tokens (each chunk's first ones) are part of the step's budget, so compute stays the same.
        var budget = BlendScorer.Budget(step.Ratio, report.TotalCandidates);
        var kept = TokenSelection.Select(scores, CollectionsMarshal.AsSpan(candidates), Math.Max(0, budget - rows.ForcedCount), CollectionsMarshal.AsSpan(others));
        report.RecordCheck(layer, kept, rows, deviation);
        BlendCommitPolicy.CommitAfterSelection(pass, layer, kept, committedAll);
        report.RecordKeptSlots(rows.Keep(pass, kept));
    }
}
