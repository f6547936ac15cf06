using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Sharing;
using KvFusion.Cache.Storage;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion eval …</c>: quality harnesses.</summary>
internal static class EvalCommands
{
    public static Command Create()
    {
        var command = new Command("eval", "Quality and speed harnesses.");
        command.Subcommands.Add(Fusion());
        command.Subcommands.Add(EvalCasesCommand.Create());
        return command;
    }

    internal static IReadOnlyList<FusionModeSpec> ParseModes(string text)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(FusionModeSpec.Parse).ToList();
        }
        catch (FusionException e)
        {
            throw new CliException(e.Message);
        }
    }

    internal static SinkKind? ParseSink(string? text) => text?.ToLowerInvariant() switch
    {
        null or "" or "default" => null,
        "none" => SinkKind.None,
        "bos" => SinkKind.Bos,
        "prefix" => SinkKind.Prefix,
        _ => throw new CliException($"Unknown sink '{text}' (none, bos, prefix)."),
    };

    private static Command Fusion()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var cases = new Option<string>("--cases") { Description = "JSON-lines case file (see docs/fusion-cases.md).", Required = true };
        var modes = new Option<string>("--modes")
        {
            Description = "Comma-separated modes: full, prefix, reuse, blend:R, blend:R:VARIANT (variants: " + string.Join(", ", FusionModeCatalog.Variants.Keys) + "); with --sender also share:RANGES (e.g. share:none, share:0-1) and share (the --profile's ranges).",
            DefaultValueFactory = _ => "full,prefix,reuse,blend:0.15,blend:0.3",
        };
        var sink = new Option<string?>("--sink") { Description = "Sink chunks are precomputed behind: none, bos, prefix (default: the engine's)." };
        var ttftRuns = new Option<int>("--ttft-runs") { Description = "Timed fusions per case and mode (median).", DefaultValueFactory = _ => 3 }.AtLeast(1);
        var limit = new Option<int?>("--limit") { Description = "Use only the first N cases." };
        var output = new Option<string?>("--out") { Description = "Directory for summary.json and the PNG plot." };
        var sender = new Option<string?>("--sender")
        {
            Description = "Cross-model sharing: the model whose caches share modes fuse (--model is the receiver). It stores the case chunks with the E-cache of every layer.",
        };
        var ecache = new Option<string>("--ecache")
        {
            Description = "Precision the sender's E-cache is kept at (fp16, bf16, fp8), apart from --codec's K/V: measures what recomputing from it needs.",
            DefaultValueFactory = _ => "fp16",
        };
        var profile = new Option<string?>("--profile") { Description = "A sharing profile (kvfusion profile sharing) for --sender → --model: the ranges of a plain 'share' mode." };
        var floor = new Option<double?>("--floor")
        {
            Description = "Quality gate floor for every blend mode: the largest estimated KL let through; above it the ratio is raised or the case prefilled in full.",
        };
        var calibration = new Option<string?>("--calibration") { Description = "A quality calibration (JSON written by --calibrate) for --model's estimates (default: the built-in tiny-pydocs one)." };
        var calibrate = new Option<string?>("--calibrate") { Description = "Fit the quality calibration on every blend mode's cases and write it to this JSON file." };
        var codec = CodecOptions.Codec("Store chunk and prefix-block caches as containers with this codec (raw, lz4, fp8, cachegen[:1..3]), so quality and TTFT include it (default: decoded in memory).");
        var command = new Command("fusion", "Quality (KL, top-1, greedy match, NLL against full) and TTFT of fusion modes on a case file.")
        {
            model, threads, device, cases, modes, sink, ttftRuns, limit, output, codec, sender, profile, ecache, floor, calibration, calibrate,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var modeList = ParseModes(parse.GetValue(modes)!);
            var gateFloor = parse.GetValue(floor);
            if (gateFloor is { } f && !(f >= 0 && double.IsFinite(f)))
            {
                throw new CliException($"--floor is an estimated KL: at least 0; got {f}.");
            }

            QualityCalibration? qualityCalibration = null;
            HiddenStatePrecision precision;
            try
            {
                precision = HiddenStateRounding.Parse(parse.GetValue(ecache)!);
            }
            catch (FormatException e)
            {
                throw new CliException(e.Message);
            }

            if (parse.GetValue(sender) is null && (parse.GetValue(profile) is not null || modeList.Any(x => x.Mode == FusionMode.Share)))
            {
                throw new CliException("Share modes and --profile need --sender: the model whose caches are shared.");
            }

            var codecSpec = CodecOptions.Parse(parse.GetValue(codec));
            var caseList = FusionCase.ReadJsonLines(parse.GetValue(cases)!);
            if (parse.GetValue(limit) is { } n)
            {
                caseList = caseList.Take(n).ToList();
            }

            if (caseList.Count == 0)
            {
                throw new CliException("The case file has no cases.");
            }

            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            if (parse.GetValue(calibration) is { } calibrationPath)
            {
                try
                {
                    qualityCalibration = QualityCalibrationFile.Load(calibrationPath, m.Fingerprint);
                }
                catch (FusionException e)
                {
                    throw new CliException(e.Message);
                }
            }

            // Blend variants that start chunk tokens from the E-cache need it stored at their check layers.
            var fromHidden = modeList.Any(x => x.Mode == FusionMode.Blend && FusionModeCatalog.Resolve(x).Blend.StartFromHiddenStates);
            using var engine = new FusionEngine(m, CodecOptions.Store(codecSpec, m), new FusionEngineOptions
            {
                HiddenStateLayers = fromHidden ? [.. Enumerable.Range(1, m.Config.LayerCount - 1)] : FusionEngineOptions.DefaultHiddenStateLayers,
                QualityCalibration = qualityCalibration ?? FusionEngineOptions.DefaultQualityCalibration,
            });
            using var senderModel = parse.GetValue(sender) is { } senderPath ? CommonOptions.LoadModel(senderPath, backend) : null;

            var sharing = parse.GetValue(profile) is { } profilePath ? SharingProfile.Load(profilePath) : null;
            if (sharing is not null)
            {
                sharing.EnsureFor(senderModel!.Fingerprint, m.Fingerprint);
            }

            using var senderEngine = senderModel is null
                ? null
                : new FusionEngine(senderModel, new HiddenStateRoundingStore(CodecOptions.Store(codecSpec, senderModel), precision), new FusionEngineOptions { HiddenStateLayers = [.. Enumerable.Range(1, senderModel.Config.LayerCount - 1)] });
            var evaluator = new FusionEvaluator(engine, new FusionEvaluationOptions
            {
                TtftRuns = parse.GetValue(ttftRuns),
                Sink = ParseSink(parse.GetValue(sink)),
                Sender = senderEngine,
                DefaultRecompute = sharing?.Recompute,
                QualityFloor = gateFloor,
            });
            IReadOnlyList<FusionModeResult> results = [];
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"{caseList.Count} cases × {modeList.Count} modes", maxValue: caseList.Count * modeList.Count);
                var progress = new SynchronousProgress<(int Done, int Total)>(p => task.Value = p.Done);
                results = await evaluator.EvaluateAsync(caseList, modeList, progress, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);

            var codecTitle = (codecSpec is { } cs ? $", codec {cs}" : string.Empty)
                + (senderModel is null ? string.Empty : $", shared from {Path.GetFileName(senderModel.Directory)} (E-cache {precision.ToString().ToLowerInvariant()})" + (sharing is null ? string.Empty : $" (profile: share = share:{sharing.Recompute})"));
            var table = new Table().Title($"fusion quality and TTFT: {Markup.Escape(Path.GetFileName(m.Directory))}, {caseList.Count} cases, {Markup.Escape(backend.DeviceName)}{codecTitle}")
                .AddColumns("mode", "compute", "mean KL", "top-1", "greedy match", "greedy prefix", "answer NLL", "TTFT ms", "TTFT full/mode");
            foreach (var r in results)
            {
                table.AddRow(
                    r.Mode, r.ComputeFraction.ToString("P1", CultureInfo.InvariantCulture), r.MeanKl.ToString("F4", CultureInfo.InvariantCulture),
                    r.Top1Agreement.ToString("P1", CultureInfo.InvariantCulture), r.GreedyMatch.ToString("P0", CultureInfo.InvariantCulture),
                    r.GreedyPrefixAgreement.ToString("P0", CultureInfo.InvariantCulture), r.AnswerNll.ToString("F3", CultureInfo.InvariantCulture),
                    r.TtftMs.ToString("F1", CultureInfo.InvariantCulture), r.TtftRatioToFull.ToString("F2", CultureInfo.InvariantCulture) + "x");
            }

            AnsiConsole.Write(table);
            var gates = QualityGateStatistics.Summarize(results);
            WriteGateTables(caseList.Count, results, gates, gateFloor);
            QualityCalibration? fitted = null;
            if (parse.GetValue(calibrate) is { } calibratePath)
            {
                try
                {
                    fitted = QualityGateStatistics.Calibrate(results);
                }
                catch (ArgumentException e)
                {
                    throw new CliException($"No calibration could be fitted: {e.Message} Evaluate blend modes on more cases.");
                }

                QualityCalibrationFile.Save(calibratePath, fitted, Path.GetFileName(m.Directory), m.Fingerprint, results.Sum(r => r.PerCase.Count(c => c.Quality is not null)));
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]quality calibration: estimated KL = {fitted.Scale:G4} · signal^{fitted.Exponent:G4}; wrote {calibratePath}[/]");
            }

            if (CodecOptions.Describe(engine.Store) is { } stored)
            {
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]{stored}[/]");
            }

            if (parse.GetValue(output) is { } dir)
            {
                Directory.CreateDirectory(dir);
                var shared = senderModel is null ? null : new SharingSummary(Path.GetFileName(senderModel.Directory), sharing?.Recompute.ToString(), precision.ToString().ToLowerInvariant());
                WriteSummary(Path.Combine(dir, "summary.json"), Path.GetFileName(m.Directory), backend.DeviceName, caseList.Count, codecSpec, shared, results, gates, gateFloor);
                FusionPlots.Quality(Path.Combine(dir, "fusion-quality.png"), $"{Path.GetFileName(m.Directory)}: {caseList.Count} cases", results);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {dir}/summary.json and {dir}/fusion-quality.png[/]");
            }

            return 0;
        }));
        return command;
    }

    /// <summary>Per case, each blend mode's estimate beside its measured KL; per mode, the gate's calibration.</summary>
    private static void WriteGateTables(int caseCount, IReadOnlyList<FusionModeResult> results, IReadOnlyList<QualityGateResult> gates, double? floor)
    {
        var gated = results.Where(r => r.PerCase.Any(c => c.Quality is not null)).ToList();
        if (gated.Count == 0)
        {
            return;
        }

        var perCase = new Table().Title("blend's quality estimate beside the measured KL, per case (estimate / KL; * raised, F full)").AddColumn("case");
        foreach (var r in gated)
        {
            perCase.AddColumn(Markup.Escape(r.Mode));
        }

        for (var i = 0; i < caseCount; i++)
        {
            var cells = new List<string> { (i + 1).ToString(CultureInfo.InvariantCulture) };
            foreach (var r in gated)
            {
                var c = r.PerCase.FirstOrDefault(x => x.Case == i);
                cells.Add(c?.Quality is not { } q ? "-" : string.Create(CultureInfo.InvariantCulture, $"{q.RequestedEstimatedKl:F3} / {c.MeanKl:F3}") + q.Decision switch
                {
                    QualityDecision.RatioRaised => string.Create(CultureInfo.InvariantCulture, $" *{q.Ratio:0.##}"),
                    QualityDecision.FellBackToFull => " F",
                    _ => string.Empty,
                });
            }

            perCase.AddRow(cells.ToArray());
        }

        AnsiConsole.Write(perCase);
        var summary = new Table().Title(floor is { } f ? string.Create(CultureInfo.InvariantCulture, $"quality gate, floor {f}") : "quality gate calibration (no floor set)")
            .AddColumns("mode", "Spearman (estimate, KL)", "mean estimate", "mean KL", "passed", "raised", "full", "let through above floor");
        foreach (var g in gates)
        {
            summary.AddRow(
                Markup.Escape(g.Mode), g.Spearman.ToString("F3", CultureInfo.InvariantCulture), g.MeanEstimatedKl.ToString("F4", CultureInfo.InvariantCulture),
                g.MeanKl.ToString("F4", CultureInfo.InvariantCulture),
                g.Passed.ToString(CultureInfo.InvariantCulture), g.Raised.ToString(CultureInfo.InvariantCulture), g.FellBack.ToString(CultureInfo.InvariantCulture),
                floor is null ? "-" : string.Create(CultureInfo.InvariantCulture, $"{g.Leaked} of {g.Cases}"));
        }

        AnsiConsole.Write(summary);
    }

    private static void WriteSummary(
        string path, string model, string device, int cases, KvCodecSpec? codec, SharingSummary? shared, IReadOnlyList<FusionModeResult> results, IReadOnlyList<QualityGateResult> gates, double? floor)
    {
        using var report = JsonReport.Create(path, model, device);
        var w = report.Writer;
        w.WriteNumber("cases", cases);
        if (codec is { } c)
        {
            w.WriteString("codec", c.ToString());
        }

        if (shared is not null)
        {
            w.WriteString("sender", shared.Sender);
            w.WriteString("ecache", shared.HiddenStatePrecision);
            if (shared.ProfileRecompute is { } ranges)
            {
                w.WriteString("profile_recompute", ranges);
            }
        }

        w.WriteStartArray("modes");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("mode", r.Mode);
            w.WriteNumber("mean_kl", Math.Round(r.MeanKl, 6));
            w.WriteNumber("top1_agreement", Math.Round(r.Top1Agreement, 4));
            w.WriteNumber("greedy_match", Math.Round(r.GreedyMatch, 4));
            w.WriteNumber("greedy_prefix_agreement", Math.Round(r.GreedyPrefixAgreement, 4));
            w.WriteNumber("answer_nll", Math.Round(r.AnswerNll, 4));
            w.WriteNumber("ttft_ms", Math.Round(r.TtftMs, 3));
            w.WriteNumber("ttft_ratio_to_full", Math.Round(r.TtftRatioToFull, 3));
            w.WriteNumber("compute_fraction", Math.Round(r.ComputeFraction, 4));
            w.WriteNumber("prompt_tokens", Math.Round(r.PromptTokens, 1));
            w.WriteStartArray("cases");
            foreach (var one in r.PerCase)
            {
                w.WriteStartObject();
                w.WriteNumber("case", one.Case);
                w.WriteNumber("mean_kl", Math.Round(one.MeanKl, 6));
                w.WriteNumber("top1_agreement", Math.Round(one.Top1Agreement, 4));
                if (one.Quality is { } q)
                {
                    w.WriteNumber("signal", q.Signal);
                    w.WriteNumber("estimated_kl", Math.Round(q.EstimatedKl, 6));
                    w.WriteNumber("requested_estimated_kl", Math.Round(q.RequestedEstimatedKl, 6));
                    w.WriteString("decision", JsonNamingPolicy.SnakeCaseLower.ConvertName(q.Decision.ToString()));
                    w.WriteNumber("ratio", Math.Round(q.Ratio, 4));
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        if (floor is { } f)
        {
            w.WriteNumber("quality_floor", f);
        }

        w.WriteStartArray("quality_gate");
        foreach (var g in gates)
        {
            w.WriteStartObject();
            w.WriteString("mode", g.Mode);
            w.WriteNumber("cases", g.Cases);
            if (double.IsFinite(g.Spearman))
            {
                w.WriteNumber("spearman", Math.Round(g.Spearman, 4));
            }

            w.WriteNumber("mean_estimated_kl", Math.Round(g.MeanEstimatedKl, 6));
            w.WriteNumber("mean_kl", Math.Round(g.MeanKl, 6));
            w.WriteNumber("passed", g.Passed);
            w.WriteNumber("raised", g.Raised);
            w.WriteNumber("fell_back", g.FellBack);
            w.WriteNumber("let_through_above_floor", g.Leaked);
            w.WriteNumber("above_floor", g.AboveFloor);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}

/// <summary>An IProgress that reports on the caller's thread (Spectre's task is updated directly).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>What a cross-model evaluation shared: the sender, the profile's ranges, the E-cache precision.</summary>
internal sealed record SharingSummary(string Sender, string? ProfileRecompute, string HiddenStatePrecision);
