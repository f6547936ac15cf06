namespace KvFusion.Cli.Plotting;

/// <summary>One loading policy at one link rate of <c>bench loader</c>, as plotted by <see cref="FusionCharts.LoaderByBandwidth"/>.</summary>
internal readonly record struct BandwidthLoadPoint(string Policy, double GbitPerSecond, double P50Ms, double P90Ms, double DeadlineMet);
