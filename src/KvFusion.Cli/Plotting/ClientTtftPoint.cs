namespace KvFusion.Cli.Plotting;

/// <summary>TTFT percentiles of one mode at one client count, as plotted by <see cref="FusionCharts.TtftByClients"/>.</summary>
internal readonly record struct ClientTtftPoint(string Mode, int Clients, double P50Ms, double P99Ms);
