using KvFusion.Server.Hosting;
using Microsoft.Extensions.Configuration;

// The service on its own (`dotnet KvFusion.Server.dll --urls ...`); `kvfusion serve` runs the same host with the
// CLI's options and devices. Command-line arguments are configuration keys (--KvFusion:Model DIR).
var arguments = new ConfigurationBuilder().AddCommandLine(args).Build();
var overrides = new Dictionary<string, string?>(StringComparer.Ordinal);
foreach (var (key, value) in arguments.AsEnumerable())
{
    overrides[key] = value;
}

await using var app = KvFusionServerHost.Build(overrides);
await app.RunAsync().ConfigureAwait(false);
