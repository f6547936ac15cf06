using System.CommandLine;
using System.Globalization;
using KvFusion.Cli.Plotting;
using KvFusion.Diagnostics.Benchmarks;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench loader</c>: the loading controller against each fixed choice (always raw, always the smallest
/// level, always text) over a throttled remote tier, at link rates from 0.1 to 10 Gbit/s (<see cref="LoaderBenchmark"/>).
/// </summary>
internal static class BenchLoaderCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var cases = new Option<string?>("--cases") { Description = "JSON-lines case file (docs/fusion-cases.md); default: cases generated from ../shared/corpus as bench codec does." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N cases (or generate N)." };
        var rates = new Option<string>("--gbits") { Description = "Comma-separated nominal link rates in Gbit/s.", DefaultValueFactory = _ => "0.1,0.3,1,3,10" };
        var requests = new Option<int>("--requests") { Description = "Requests per rate and policy.", DefaultValueFactory = _ => 6 }.Between(1, 10_000);
        var sigma = new Option<double>("--trace-sigma") { Description = "Spread of the rate per request: nominal × e^(σ·N(0,1)).", DefaultValueFactory = _ => 0.5 };
        var deadline = new Option<double?>("--deadline-ms") { Description = "The TTFT deadline; default: the median TTFT of computing every chunk from text, measured in the warm-up." };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var png = new Option<string?>("--png") { Description = "Plot TTFT and deadlines met against the link rate to this PNG file." };
        var redis = new Option<string?>("--redis") { Description = "Keep the chunks in this Redis (host:port), reached through a bandwidth-limiting TCP proxy on loopback; default: a throttled in-process tier." };
        var command = new Command("loader", "TTFT, quality and deadlines met of the loading controller against always-raw, always-smallest and always-text over a throttled tier.")
        {
            model, threads, device, cases, limit, rates, requests, sigma, deadline, redis, json, png,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var gbits = ParseRates(parse.GetValue(rates)!);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var caseList = BenchCodecCommand.LoadCases(parse.GetValue(cases), parse.GetValue(limit), m, ct);
            var options = new LoaderBenchmarkOptions
            {
                GbitPerSecond = gbits,
                Requests = parse.GetValue(requests),
                TraceSigma = parse.GetValue(sigma),
                Redis = parse.GetValue(redis),
                Deadline = parse.GetValue(deadline) is { } ms ? TimeSpan.FromMilliseconds(ms > 0 ? ms : throw new CliException("--deadline-ms must be above 0.")) : null,
            };
            LoaderBenchmarkResult? result = null;
            await CommonOptions.Diagnostics.Progress().StartAsync(async p =>
            {
                var task = p.AddTask("storing the chunks, measuring the levels' KL and warming up", maxValue: 1);
                var progress = new Progress<(int Done, int Total)>(x =>
                {
                    task.Description = $"{x.Done} of {x.Total} requests";
                    task.MaxValue = x.Total;
                    task.Value = x.Done;
                });
                result = await LoaderBenchmark.RunAsync(m, caseList, options, progress, ct).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);

            var name = Path.GetFileName(m.Directory);
            Write(result!, name, backend.DeviceName, caseList.Count, options);
            if (parse.GetValue(json) is { } path)
            {
                WriteJson(path, result!, name, backend.DeviceName, options);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
            }

            if (parse.GetValue(png) is { } pngPath)
            {
                var points = result!.Points.Select(x => new BandwidthLoadPoint(x.Policy, x.GbitPerSecond, x.TtftMs, x.TtftP90Ms, x.DeadlineMet)).ToList();
                FusionCharts.LoaderByBandwidth(pngPath, $"{name}: TTFT by loading policy (deadline {result.Deadline.TotalMilliseconds:F0} ms)", points);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {pngPath}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static List<double> ParseRates(string text)
    {
        var list = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            list.Add(double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && double.IsFinite(v)
                ? v
                : throw new CliException($"--gbits: '{part}' is not a rate in Gbit/s above 0."));
        }

        return list.Count > 0 ? list : throw new CliException("--gbits names no rate.");
    }

    /// <summary>Per rate: the best fixed choice, and whether the controller is within 10% of its TTFT at equal or better quality and meets more deadlines than every fixed choice.</summary>
    internal static (LoaderPoint Best, double Ratio, bool Quality, bool Deadlines) Targets(IReadOnlyList<LoaderPoint> points, double gbit)
    {
        var at = points.Where(p => p.GbitPerSecond == gbit).ToList();
        var controller = at.Single(p => p.Policy == "controller");
        var fixedChoices = at.Where(p => p.Policy != "controller").ToList();
        var best = fixedChoices.OrderBy(p => p.TtftMs).First();
        return (best, controller.TtftMs / best.TtftMs, controller.MeanKl <= best.MeanKl * 1.0001 + 1e-9, controller.DeadlineMet > fixedChoices.Max(p => p.DeadlineMet));
    }

    private static void Write(LoaderBenchmarkResult result, string model, string device, int cases, LoaderBenchmarkOptions options)
    {
        var table = new Table()
            .Title($"loader: {Markup.Escape(model)} on {Markup.Escape(device)}, {cases} cases, {options.Requests} requests per rate and policy, deadline {result.Deadline.TotalMilliseconds:F0} ms, remote tier: {(options.Redis is null ? "throttled in-process" : "Redis through a throttling TCP proxy")}")
            .AddColumns("Gbit/s", "policy", "TTFT p50 ms", "TTFT p90 ms", "predicted p50 ms", "mean KL vs full", "deadline met", "choices", "TTFT / best fixed");
        foreach (var gbit in result.Points.Select(p => p.GbitPerSecond).Distinct())
        {
            var (best, _, _, _) = Targets(result.Points, gbit);
            foreach (var p in result.Points.Where(p => p.GbitPerSecond == gbit))
            {
                var choices = string.Join(" ", p.Choices.OrderByDescending(c => c.Value).Select(c => $"{c.Key}×{c.Value}"));
                table.AddRow(F(gbit, "G"), p.Policy, F(p.TtftMs, "F1"), F(p.TtftP90Ms, "F1"), double.IsFinite(p.PredictedTtftMs) ? F(p.PredictedTtftMs, "F1") : "-", F(p.MeanKl, "F4"), F(p.DeadlineMet * 100, "F0") + "%", Markup.Escape(choices),
                    p == best ? "best fixed" : F(p.TtftMs / best.TtftMs, "F2") + "x");
            }
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[grey]Codec KL given to the controller, measured in this run (blend over the level against blend over raw): {Markup.Escape(string.Join(", ", result.CodecKl.Select(k => $"{k.Key} {k.Value:F4}")))}. The rate of each request is the nominal one × e^(σ·N(0,1)), σ {options.TraceSigma:F2}; {(options.Redis is null ? $"the link's latency is {options.Latency.TotalMilliseconds:F0} ms per read" : "the proxy limits the rate and adds no latency")}.[/]");
        foreach (var gbit in result.Points.Select(p => p.GbitPerSecond).Distinct())
        {
            var (best, ratio, quality, deadlines) = Targets(result.Points, gbit);
            AnsiConsole.MarkupLine($"{F(gbit, "G")} Gbit/s: controller TTFT {F(ratio, "F2")}x the best fixed choice ({best.Policy}) {(ratio <= 1.1 ? "[green]within 10%[/]" : "[red]not within 10%[/]")}, quality {(quality ? "[green]equal or better[/]" : "[red]worse[/]")}, deadlines {(deadlines ? "[green]more met than any fixed choice[/]" : "[red]not more than every fixed choice[/]")}");
        }
    }

    private static void WriteJson(string path, LoaderBenchmarkResult result, string model, string device, LoaderBenchmarkOptions options)
    {
        using var report = JsonReport.Create(path, model, device);
        var w = report.Writer;
        w.WriteNumber("deadline_ms", Math.Round(result.Deadline.TotalMilliseconds, 3));
        w.WriteNumber("requests", options.Requests);
        w.WriteNumber("trace_sigma", options.TraceSigma);
        w.WriteNumber("latency_ms", options.Latency.TotalMilliseconds);
        w.WriteString("remote_tier", options.Redis is null ? "throttled-memory" : "redis-through-proxy");
        w.WriteStartObject("codec_kl");
        foreach (var (codec, kl) in result.CodecKl)
        {
            w.WriteNumber(codec.ToString(), Math.Round(kl, 6));
        }

        w.WriteEndObject();
        w.WriteStartArray("points");
        foreach (var p in result.Points)
        {
            w.WriteStartObject();
            w.WriteNumber("gbit_s", p.GbitPerSecond);
            w.WriteString("policy", p.Policy);
            w.WriteNumber("ttft_ms", Math.Round(p.TtftMs, 3));
            w.WriteNumber("ttft_p90_ms", Math.Round(p.TtftP90Ms, 3));
            w.WriteNumber("mean_kl", Math.Round(p.MeanKl, 6));
            if (double.IsFinite(p.PredictedTtftMs))
            {
                w.WriteNumber("predicted_ttft_ms", Math.Round(p.PredictedTtftMs, 3));
            }

            w.WriteNumber("deadline_met", Math.Round(p.DeadlineMet, 4));
            w.WriteStartObject("choices");
            foreach (var (choice, count) in p.Choices)
            {
                w.WriteNumber(choice, count);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("targets");
        foreach (var gbit in result.Points.Select(p => p.GbitPerSecond).Distinct())
        {
            var (best, ratio, quality, deadlines) = Targets(result.Points, gbit);
            w.WriteStartObject();
            w.WriteNumber("gbit_s", gbit);
            w.WriteString("best_fixed", best.Policy);
            w.WriteNumber("ttft_ratio_to_best_fixed", Math.Round(ratio, 4));
            w.WriteBoolean("within_10_percent", ratio <= 1.1);
            w.WriteBoolean("equal_or_better_quality", quality);
            w.WriteBoolean("more_deadlines_met", deadlines);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
