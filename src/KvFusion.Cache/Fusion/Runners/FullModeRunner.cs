using System.Diagnostics;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary><c>full</c>: prefill the whole prompt; the quality reference.</summary>
internal sealed class FullModeRunner : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Full;

    public async Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var plan = run.Plan;
        var sw = Stopwatch.StartNew();
        await run.PrefillAsync(plan.Tokens, cancellationToken).ConfigureAwait(false);
        run.Stages["compute"] = sw.Elapsed;
        return plan.Report(reused: 0, Enumerable.Repeat(plan.Tokens.Length, run.LayerCount).ToArray());
    }
}
