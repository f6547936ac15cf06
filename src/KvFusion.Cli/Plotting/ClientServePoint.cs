namespace KvFusion.Cli.Plotting;

/// <summary>One run of <c>bench serve</c> (a scheduler and mode at one client count), as plotted by <see cref="FusionCharts.ServeByClients"/>.</summary>
internal readonly record struct ClientServePoint(string Series, int Clients, double P50Ms, double P99Ms, double TokensPerSecond);
