namespace KvFusion.Cli.Plotting;

/// <summary>One fusion mode's quality and cost, as plotted by <see cref="FusionCharts.QualityVersusRecompute"/>.</summary>
/// <param name="Mode">Mode name: <c>full</c>, <c>reuse</c>, <c>blend:RATIO</c> or <c>blend:RATIO:VARIANT</c>.</param>
/// <param name="RecomputeFraction">Fraction of prompt tokens recomputed (full = 1, reuse ≈ 0).</param>
/// <param name="MeanKl">Mean KL divergence of the next-token distribution against full prefill.</param>
/// <param name="Top1Agreement">Fraction of positions whose top-1 token matches full prefill (0..1).</param>
/// <param name="TtftRatioToFull">Full prefill's time to first token divided by this mode's (the speed-up; as in summary.json).</param>
internal readonly record struct QualityPoint(string Mode, double RecomputeFraction, double MeanKl, double Top1Agreement, double TtftRatioToFull);
