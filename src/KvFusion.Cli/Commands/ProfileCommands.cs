using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Sharing;
using KvFusion.Cli.Plotting;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion profile …</c>: offline profiles the engine and the service load.</summary>
internal static class ProfileCommands
{
    public static Command Create()
    {
        var command = new Command("profile", "Offline profiles the engine and the service load.");
        command.Subcommands.Add(Sharing());
        return command;
    }

    private static Command Sharing()
    {
        var sender = new Option<string>("--sender") { Description = "The model whose caches are shared (directory or hf:OWNER/NAME).", Required = true };
        var receiver = new Option<string>("--receiver") { Description = "The model that uses them (directory or hf:OWNER/NAME).", Required = true };
        var cases = new Option<string>("--cases") { Description = "JSON-lines case file (see docs/fusion-cases.md).", Required = true };
        var budget = new Option<double>("--budget")
        {
            Description = "Quality budget: the chosen ranges' mean KL at most this fraction of full reuse's, in (0, 1].",
            DefaultValueFactory = _ => 1.0 / 3,
        };
        var search = new Option<string>("--search") { Description = "auto (exact up to 10 layers, else greedy), exact or greedy.", DefaultValueFactory = _ => "auto" };
        var sink = new Option<string?>("--sink") { Description = "Sink chunks are precomputed behind: none, bos, prefix (default: the engine's)." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N cases." };
        var output = new Option<string>("--out") { Description = "The profile (JSON) to write.", DefaultValueFactory = _ => "sharing-profile.json" };
        var plot = new Option<string?>("--plot") { Description = "PNG of the per-layer sensitivity and the quality/compute curve." };
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var command = new Command("sharing", "Profile cross-model sharing (DroidSpeak) for a sender/receiver pair: per-layer sensitivity and the cheapest recompute ranges within a quality budget.")
        {
            sender, receiver, cases, budget, search, sink, limit, output, plot, threads, device,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var exactMax = parse.GetValue(search)!.ToLowerInvariant() switch
            {
                "auto" => 10,
                "exact" => SharingProfilerOptions.MaxExactLayers,
                "greedy" => 0,
                var other => throw new CliException($"Unknown search '{other}' (auto, exact, greedy)."),
            };
            var options = CommonOptions.CheckOptions(() =>
            {
                var o = new SharingProfilerOptions { Budget = parse.GetValue(budget), ExactMaxLayers = exactMax, Sink = EvalCommands.ParseSink(parse.GetValue(sink)) };
                o.Validate();
                return o;
            });
            var caseList = FusionCase.ReadJsonLines(parse.GetValue(cases)!);
            if (parse.GetValue(limit) is { } n)
            {
                caseList = [.. caseList.Take(n)];
            }

            if (caseList.Count == 0)
            {
                throw new CliException("The case file has no cases.");
            }

            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var s = CommonOptions.LoadModel(parse.GetValue(sender), backend);
            using var r = CommonOptions.LoadModel(parse.GetValue(receiver), backend);
            var profiler = new SharingProfiler(s, r, options);
            SharingProfile? profile = null;
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"{caseList.Count} cases, {(profiler.IsExact ? "exact" : "greedy")} search", maxValue: 1);
                var progress = new SynchronousProgress<(int Done, int Total)>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = Math.Min(p.Done, task.MaxValue);
                });
                profile = await profiler.ProfileAsync(caseList, progress, ct).ConfigureAwait(false);
                task.Value = task.MaxValue;
            }).ConfigureAwait(false);

            Show(profile!);
            var path = parse.GetValue(output)!;
            profile!.Save(path);
            CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
            if (parse.GetValue(plot) is { } png)
            {
                var sets = profile.Candidates.Select(c => (c.Recompute.LayerCount, c.MeanKl, c.Recompute.ToString())).ToList();
                FusionCharts.SharingSensitivity(png, $"{profile.SenderName} → {profile.ReceiverName}: {profile.Cases} cases, {profile.Search} search",
                    profile.LayerSensitivity, profile.ReuseKl, sets, (profile.Recompute.LayerCount, profile.RecomputeKl, profile.Recompute.ToString()));
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {png}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static void Show(SharingProfile profile)
    {
        var layers = new Table().Title($"{Markup.Escape(profile.SenderName)} → {Markup.Escape(profile.ReceiverName)}: sensitivity per layer ({profile.Cases} cases)")
            .AddColumns("layer", "KL when only this layer reuses the sender's KV");
        for (var l = 0; l < profile.LayerSensitivity.Count; l++)
        {
            layers.AddRow(l.ToString(CultureInfo.InvariantCulture), profile.LayerSensitivity[l].ToString("F4", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(layers);
        var best = new Table().Title("best measured set per number of recomputed layers").AddColumns("layers recomputed", "ranges", "mean KL", "KL / full reuse", "TTFT full/share");
        foreach (var group in profile.Candidates.GroupBy(c => c.Recompute.LayerCount).OrderBy(g => g.Key))
        {
            var c = group.OrderBy(x => x.MeanKl).First();
            best.AddRow(group.Key.ToString(CultureInfo.InvariantCulture), c.Recompute.ToString(), c.MeanKl.ToString("F4", CultureInfo.InvariantCulture),
                (profile.ReuseKl > 0 ? c.MeanKl / profile.ReuseKl : 0).ToString("P0", CultureInfo.InvariantCulture), c.TtftRatioToFull.ToString("F2", CultureInfo.InvariantCulture) + "x");
        }

        AnsiConsole.Write(best);
        AnsiConsole.MarkupLineInterpolated($"Chosen: recompute [bold]{profile.Recompute}[/] ({profile.Recompute.LayerCount}/{profile.LayerCount} layers), mean KL {profile.RecomputeKl:F4} against {profile.ReuseKl:F4} with full reuse (budget {profile.Budget:P0}).");
    }
}
