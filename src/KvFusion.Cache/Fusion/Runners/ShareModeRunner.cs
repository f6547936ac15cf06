using System.Diagnostics;
using KvFusion.Cache.Fusion.Planning;
using KvFusion.Cache.Sharing;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>
/// <c>share</c> (DroidSpeak): the chunks are another model's stored caches. Their K/V go into the session for every
/// layer; then, for each recompute range, one pass over all chunk rows starts at the range's first layer from the
/// sender's E-cache (from the receiver's own embedding at layer 0) and writes the receiver's K/V for the range's
/// layers. The prefix and the query are the receiver's own. With every layer in one range this is the receiver's
/// full prefill; with none it is <c>reuse</c> of the sender's caches.
/// </summary>
internal sealed class ShareModeRunner(PrefixBlocks prefixBlocks) : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Share;

    public async Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var shared = plan.SharedFrom ?? throw new InvalidOperationException("A share plan names its sender.");
        var sw = Stopwatch.StartNew();
        var load = await prefixBlocks.LoadAsync(session, plan.Tokens, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();
        var computed = plan.Query.Length;
        if (load.Loaded < plan.Prefix.Length)
        {
            session.Prefill(plan.Prefix.AsSpan(load.Loaded), run.Logits, cancellationToken: cancellationToken);
            computed += plan.Prefix.Length - load.Loaded;
        }

        stages["compute"] = sw.Elapsed;
        sw.Restart();
        ChunkCaches.Import(session, plan);
        stages["load"] += sw.Elapsed;
        sw.Restart();
        if (plan.Chunks.Count > 0)
        {
            Recompute(session, plan, shared.Recompute, cancellationToken);
        }

        session.Prefill(plan.Query, run.Logits, cancellationToken: cancellationToken);
        stages["compute"] += sw.Elapsed;
        sw.Restart();
        await prefixBlocks.StoreAsync(session, plan.Tokens, load, plan.Prefix.Length, cancellationToken).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;

        var layers = run.LayerCount;
        var perLayer = new int[layers];
        for (var l = 0; l < layers; l++)
        {
            perLayer[l] = computed + (shared.Recompute.Contains(l) ? plan.ChunkTokens : 0);
        }

        var reusedChunkTokens = shared.Recompute.LayerCount == layers ? 0 : plan.ChunkTokens;
        return plan.Report(reusedChunkTokens + load.Loaded, perLayer);
    }

    /// <summary>Recomputes the ranges' layers of every chunk row on the receiver, each range from its entering hidden state.</summary>
    internal static void Recompute(InferenceSession session, FusionPlan plan, RecomputeRanges ranges, CancellationToken cancellationToken)
    {
        var rows = plan.ChunkTokens;
        var tokens = new int[rows];
        var slots = new int[rows];
        var r = 0;
        foreach (var c in plan.Chunks)
        {
            for (var i = 0; i < c.Tokens.Length; i++, r++)
            {
                tokens[r] = c.Tokens[i];
                slots[r] = c.Slot + i;
            }
        }

        var hiddenSize = session.Model.Config.HiddenSize;
        float[]? hidden = null;
        foreach (var range in ranges.Ranges)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var pass = session.BeginPass(tokens, slots, slots);
            if (range.First > 0)
            {
                hidden ??= new float[rows * hiddenSize];
                ChunkCaches.CopyHiddenStates(plan, range.First, hiddenSize, hidden);

                pass.StartAt(range.First, hidden);
            }

            for (var l = range.First; l <= range.Last; l++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                pass.ComputeQkv(l);
                pass.CommitKv(l);
                if (l < range.Last)
                {
                    // After the range's last layer the sender's K/V take over: its output feeds nothing.
                    pass.CompleteLayer(l);
                }
            }
        }
    }
}
