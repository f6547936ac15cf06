using KvFusion.Cache.Evaluation;
using KvFusion.Cli.Plotting;

namespace KvFusion.Cli.Commands;

/// <summary>Adapts harness and benchmark results to the chart writer.</summary>
internal static class FusionPlots
{
    public static void Quality(string path, string title, IReadOnlyList<FusionModeResult> results) =>
        FusionCharts.QualityVersusRecompute(path, title, results.Select(r => new QualityPoint(r.Mode, r.ComputeFraction, r.MeanKl, r.Top1Agreement, r.TtftRatioToFull)).ToList());

    public static void Ttft(string path, string title, IReadOnlyList<BenchFusionCommand.Row> rows) =>
        FusionCharts.TtftByChunks(path, title, rows.Select(r => new TtftPoint(r.Mode, r.Chunks, r.TtftMs)).ToList());
}
