using System.Diagnostics;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary><c>full</c>: prefill the whole prompt; the quality reference.</summary>
internal sealed class FullModeRunner : IFusionModeRunner
{
    public FusionMode Mode => FusionMode.Full;

    public Task<FusionReport> RunAsync(FusionRun run, CancellationToken cancellationToken)
    {
        var plan = run.Plan;
        var sw = Stopwatch.StartNew();
        run.Session.Prefill(plan.Tokens, run.Logits, cancellationToken: cancellationToken);
        run.Stages["compute"] = sw.Elapsed;
        return Task.FromResult(plan.Report(reused: 0, Enumerable.Repeat(plan.Tokens.Length, run.LayerCount).ToArray()));
    }
}
