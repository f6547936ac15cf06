using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Benchmarks;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench eviction</c>: the host-memory tier's cost-aware eviction against plain LRU on a skewed lookup
/// trace, per budget: hit rate, share of recompute cost saved, byte hit rate (<see cref="EvictionTraceBenchmark"/>).
/// </summary>
internal static class BenchEvictionCommand
{
    public static Command Create()
    {
        var defaults = new EvictionTraceOptions();
        var entries = new Option<int>("--entries") { Description = "Distinct chunk caches in the catalogue.", DefaultValueFactory = _ => defaults.Entries };
        var accesses = new Option<int>("--accesses") { Description = "Lookups in the trace.", DefaultValueFactory = _ => defaults.Accesses };
        var zipf = new Option<double>("--zipf") { Description = "Zipf exponent of popularity.", DefaultValueFactory = _ => defaults.ZipfExponent };
        var oneOff = new Option<double>("--one-off") { Description = "Share of lookups for chunks seen only once.", DefaultValueFactory = _ => defaults.OneOffShare };
        var budgets = new Option<string>("--budgets") { Description = "Comma-separated memory budgets, in percent of the catalogue's bytes.", DefaultValueFactory = _ => "5,10,25" };
        var seed = new Option<int>("--seed") { Description = "Seed of the catalogue and trace.", DefaultValueFactory = _ => defaults.Seed };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var command = new Command("eviction", "Host-memory eviction: cost-aware (recency weighted by recompute cost per byte) against plain LRU on a skewed trace, same run.")
        {
            entries, accesses, zipf, oneOff, budgets, seed, json,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var percents = ParsePercents(parse.GetValue(budgets)!);
            var options = new EvictionTraceOptions
            {
                Entries = parse.GetValue(entries),
                Accesses = parse.GetValue(accesses),
                ZipfExponent = parse.GetValue(zipf),
                OneOffShare = parse.GetValue(oneOff),
                BudgetPercents = percents,
                Seed = parse.GetValue(seed),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message);
            }

            EvictionTraceReport? report = null;
            await CommonOptions.Diagnostics.Progress().StartAsync(ctx =>
            {
                var task = ctx.AddTask("replaying the trace", maxValue: percents.Length * 2);
                report = EvictionTraceBenchmark.Run(options, new Progress<int>(done => task.Value = done));
                task.Value = task.MaxValue;
                return Task.CompletedTask;
            }).ConfigureAwait(false);

            WriteTable(report!);
            if (parse.GetValue(json) is { } jsonPath)
            {
                using (var file = JsonReport.Create(jsonPath, "synthetic catalogue", "cpu"))
                {
                    EvictionTraceBenchmark.WriteJson(file.Writer, report!);
                }

                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {jsonPath}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static double[] ParsePercents(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !(values[i] > 0 && values[i] <= 100))
            {
                throw new CliException($"--budgets: '{parts[i]}' is not a percentage in (0, 100].");
            }
        }

        return values.Length > 0 ? values : throw new CliException("--budgets: give at least one percentage.");
    }

    private static void WriteTable(EvictionTraceReport report)
    {
        var o = report.Options;
        var table = new Table()
            .Title(string.Create(CultureInfo.InvariantCulture, $"Host-memory eviction: {o.Entries} chunk caches ({report.CatalogueBytes / 1e6:F1} MB), {o.Accesses} lookups, Zipf {o.ZipfExponent}, {o.OneOffShare:P0} one-off"))
            .AddColumns("budget", "policy", "hit rate", "recompute saved", "byte hit rate", "evictions", "recompute saved / LRU");
        foreach (var group in report.Rows.GroupBy(r => r.BudgetPercent))
        {
            var lru = group.Single(r => r.Policy == HostMemoryEvictionPolicy.Lru);
            foreach (var r in group.OrderBy(r => r.Policy))
            {
                table.AddRow(
                    string.Create(CultureInfo.InvariantCulture, $"{r.BudgetPercent}% ({r.BudgetBytes / 1e6:F1} MB)"),
                    r.Policy == HostMemoryEvictionPolicy.CostAware ? "cost-aware" : "[grey]LRU (baseline)[/]",
                    r.HitRate.ToString("P1", CultureInfo.InvariantCulture),
                    r.CostSaved.ToString("P1", CultureInfo.InvariantCulture),
                    r.ByteHitRate.ToString("P1", CultureInfo.InvariantCulture),
                    r.Evictions.ToString(CultureInfo.InvariantCulture),
                    (r.CostSaved / lru.CostSaved).ToString("F2", CultureInfo.InvariantCulture) + "x");
            }
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]recompute saved: share of the trace's prefill cost (KV bytes × (1 + tokens/2048)) that hits avoided; the catalogue mixes 64-2048-token chunks stored raw, lz4 and cachegen 1-3 (sizes from bench codec), popularity independent of size.[/]");
    }
}
