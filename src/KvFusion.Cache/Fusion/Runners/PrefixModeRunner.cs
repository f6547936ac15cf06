using System.Diagnostics;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary><c>prefix</c>: load the stored exact-prefix blocks, prefill the rest, store the new full blocks.</summary>
internal sealed class PrefixModeRunner(PrefixBlocks prefixBlocks) : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Prefix;

    public async Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var (plan, session, stages) = (run.Plan, run.Session, run.Stages);
        var sw = Stopwatch.StartNew();

        // At least the last token is computed: it yields the logits.
        var load = await prefixBlocks.LoadAsync(session, plan.Tokens, plan.Tokens.Length - 1, cancellationToken).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();
        await run.PrefillAsync(plan.Tokens.AsMemory(load.Loaded), cancellationToken).ConfigureAwait(false);
        stages["compute"] = sw.Elapsed;
        sw.Restart();
        await prefixBlocks.StoreAsync(session, plan.Tokens, load, plan.Tokens.Length, cancellationToken).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        return plan.Report(load.Loaded, Enumerable.Repeat(plan.Tokens.Length - load.Loaded, run.LayerCount).ToArray()) with { PrefixBlocksReused = load.Blocks };
    }
}
