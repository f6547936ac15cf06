namespace KvFusion.Cli.Plotting;

/// <summary>Time to first token of one mode at one chunk count, as plotted by <see cref="FusionCharts.TtftByChunks"/>.</summary>
internal readonly record struct TtftPoint(string Mode, int Chunks, double TtftMs);
