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
        var codec = CodecOptions.Codec("Store chunk and prefix-block caches as containers with this codec (raw, lz4, fp8, cachegen[:1..3]), so quality and TTFT include it (default: decoded in memory).");
        var command = new Command("fusion", "Quality (KL, top-1, greedy match, NLL against full) and TTFT of fusion modes on a case file.")
        {
            model, threads, device, cases, modes, sink, ttftRuns, limit, output, codec, sender, profile, ecache,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var modeList = ParseModes(parse.GetValue(modes)!);
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
            // Blend variants that start chunk tokens from the E-cache need it stored at their check layers.
            var fromHidden = modeList.Any(x => x.Mode == FusionMode.Blend && FusionModeCatalog.Resolve(x).Blend.StartFromHiddenStates);
            using var engine = new FusionEngine(m, CodecOptions.Store(codecSpec, m), fromHidden
                ? new FusionEngineOptions { HiddenStateLayers = [.. Enumerable.Range(1, m.Config.LayerCount - 1)] }
                : null);
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
            if (CodecOptions.Describe(engine.Store) is { } stored)
            {
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]{stored}[/]");
            }

            if (parse.GetValue(output) is { } dir)
            {
                Directory.CreateDirectory(dir);
                var shared = senderModel is null ? null : new SharingSummary(Path.GetFileName(senderModel.Directory), sharing?.Recompute.ToString(), precision.ToString().ToLowerInvariant());
                WriteSummary(Path.Combine(dir, "summary.json"), Path.GetFileName(m.Directory), backend.DeviceName, caseList.Count, codecSpec, shared, results);
                FusionPlots.Quality(Path.Combine(dir, "fusion-quality.png"), $"{Path.GetFileName(m.Directory)}: {caseList.Count} cases", results);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {dir}/summary.json and {dir}/fusion-quality.png[/]");
            }

            return 0;
        }));
        return command;
    }

    private static void WriteSummary(string path, string model, string device, int cases, KvCodecSpec? codec, SharingSummary? shared, IReadOnlyList<FusionModeResult> results)
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
