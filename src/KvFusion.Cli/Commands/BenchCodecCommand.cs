using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Evaluation;
using KvFusion.Cli.Plotting;
using KvFusion.Diagnostics.Benchmarks;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench codec</c>: per codec and level, size (bits per value, ratio to fp16, share of entropy
/// statistics), encode and decode speed on one core, and the fused quality with the caches read through the codec,
/// against the uncompressed caches in the same run (<see cref="CodecBenchmark"/>).
/// </summary>
internal static class BenchCodecCommand
{
    /// <summary>Cases generated when no case file is given: small, so the bench takes minutes on two cores.</summary>
    internal static readonly FusionCaseOptions DefaultCases = new() { Cases = 4, ChunksPerCase = 4, ChunkTokens = 256 };

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var cases = new Option<string?>("--cases")
        {
            Description = $"JSON-lines case file (see docs/fusion-cases.md); default: {DefaultCases.Cases} cases of {DefaultCases.ChunksPerCase} chunks × {DefaultCases.ChunkTokens} tokens generated from ../shared/corpus as eval cases does.",
        };
        var codecs = new Option<string?>("--codecs") { Description = "Comma-separated codecs (default: " + string.Join(",", Cache.Codecs.KvCodecSpec.All) + ")." };
        var limit = new Option<int?>("--limit") { Description = "Use only the first N cases (or generate N)." };
        var repetitions = new Option<int>("--repetitions") { Description = "Timed encode and decode passes per codec (median).", DefaultValueFactory = _ => 5 }.AtLeast(1);
        var ratio = new Option<double>("--ratio") { Description = "Blend recompute ratio.", DefaultValueFactory = _ => Cache.Fusion.BlendOptions.DefaultRatio };
        var sink = new Option<string?>("--sink") { Description = "Sink chunks are precomputed behind: none, bos, prefix (default: the engine's)." };
        var calibration = new Option<int>("--calibration")
        {
            Description = $"Cases generated from ../shared/corpus (seed {CalibrationSeed}, chunks of the measured cases left out) whose chunks calibrate a cachegen profile per level; each cachegen level is then also measured with its profile. 0: inline statistics only.",
            DefaultValueFactory = _ => 4,
        }.AtLeast(0);
        var variants = new Option<string?>("--variants")
        {
            Description = "Comma-separated cachegen quantizations measured after the codecs, as ablations: k<K levels>v<V levels>[:early<K levels in the first third of the layers>][:kch][:vch] (per-channel K or V scales), e.g. k8v3,k8v3:kch,k4v3:early8.",
        };
        var json = new Option<string?>("--json") { Description = "Write results as JSON." };
        var png = new Option<string?>("--png") { Description = "Write a plot of fused quality against bits per value." };
        var command = new Command("codec", "KV codecs: bits per value, ratio to fp16, entropy statistics share, MB/s per core and fused quality (reuse, blend) against the uncompressed caches, same run.")
        {
            model, threads, device, cases, codecs, limit, repetitions, ratio, sink, calibration, variants, json, png,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var codecList = CodecOptions.ParseList(parse.GetValue(codecs));
            var variantList = ParseVariants(parse.GetValue(variants));
            var n = parse.GetValue(limit);
            if (n is < 1)
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture, $"--limit must be at least 1, got {n}."));
            }

            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var caseList = LoadCases(parse.GetValue(cases), n, m, ct);
            var options = new CodecBenchmarkOptions
            {
                CalibrationCases = variantList.Count > 0 || codecList.Any(c => c.Kind == Cache.Codecs.KvCodecKind.CacheGen) ? CalibrationCases(parse.GetValue(calibration), m, ct) : [],
                Variants = variantList,
                Codecs = codecList,
                Repetitions = parse.GetValue(repetitions),
                BlendRatio = parse.GetValue(ratio),
                Sink = EvalCommands.ParseSink(parse.GetValue(sink)),
            };
            CommonOptions.CheckOptions(options.Validate);
            CodecBenchmarkReport report = null!;
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                var task = ctx.AddTask($"{caseList.Count} cases × {codecList.Count + variantList.Count} codecs + baseline", maxValue: codecList.Count + variantList.Count + 1);
                var progress = new SynchronousProgress<CodecBenchmarkProgress>(p =>
                {
                    task.Value = p.Done;
                    task.Description = Markup.Escape($"{caseList.Count} cases: {p.Stage}");
                });
                report = await CodecBenchmark.RunAsync(m, caseList, options, progress, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);

            var name = Path.GetFileName(m.Directory);
            WriteTable(report, name, backend.DeviceName);
            if (parse.GetValue(json) is { } jsonPath)
            {
                using (var file = JsonReport.Create(jsonPath, name, backend.DeviceName))
                {
                    CodecBenchmark.WriteJson(file.Writer, report);
                }

                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {jsonPath}[/]");
            }

            if (parse.GetValue(png) is { } pngPath)
            {
                var points = report.Codecs.Select(r => new CodecQualityPoint(r.Label, r.BitsPerValue, r.Blend.MeanKl, r.Reuse.MeanKl)).ToList();
                FusionCharts.QualityVersusSize(pngPath, $"{name}: fused quality against KV size ({report.Cases} {(report.Cases == 1 ? "case" : "cases")}, {report.Entries} chunk caches)", points, report.BaselineBlend.MeanKl, report.BaselineReuse.MeanKl, report.BlendMode);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {pngPath}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static List<CacheGenTuning> ParseVariants(string? text)
    {
        var list = new List<CacheGenTuning>();
        foreach (var part in (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                list.Add(CacheGenTuning.Parse(part));
            }
            catch (FormatException e)
            {
                throw new CliException($"--variants: {e.Message}");
            }
        }

        return list;
    }

    /// <summary>The seed of the calibration cases: not the measured cases' default seed, so they are other chunks.</summary>
    internal const ulong CalibrationSeed = 1009;

    /// <summary>Calibration cases from the corpus, or none (with a note) when there are none to take.</summary>
    private static IReadOnlyList<FusionCase> CalibrationCases(int count, Engine.Transformer.TransformerModel model, CancellationToken ct)
    {
        if (count == 0)
        {
            return [];
        }

        if (model.Tokenizer is not { } tokenizer)
        {
            CommonOptions.Diagnostics.MarkupLine("[yellow]The model has no tokenizer: cachegen profiles are not calibrated, inline statistics only.[/]");
            return [];
        }

        string corpus;
        try
        {
            corpus = EvalCasesCommand.ResolveCorpus(null);
        }
        catch (CliException e)
        {
            CommonOptions.Diagnostics.MarkupLineInterpolated($"[yellow]No corpus to calibrate cachegen profiles on ({e.Message}): inline statistics only.[/]");
            return [];
        }

        var options = DefaultCases with { Cases = count, Seed = CalibrationSeed };
        var generated = new FusionCaseGenerator(new ModelTokenizerAdapter(tokenizer), options).Generate(new CorpusReader(corpus).ReadAll(ct), null, ct);
        CommonOptions.Diagnostics.MarkupLineInterpolated(
            $"[grey]calibration: {generated.Count} cases of {options.ChunksPerCase} chunks × {options.ChunkTokens} tokens from {corpus}, seed {options.Seed}[/]");
        return generated;
    }

    internal static IReadOnlyList<FusionCase> LoadCases(string? path, int? limit, Engine.Transformer.TransformerModel model, CancellationToken ct)
    {
        if (path is not null)
        {
            var cases = FusionCase.ReadJsonLines(path);
            cases = limit is { } n ? cases.Take(n).ToList() : cases;
            return cases.Count > 0 ? cases : throw new CliException("The case file has no cases.");
        }

        var tokenizer = model.Tokenizer ?? throw new CliException("The model has no tokenizer to generate cases with; pass --cases FILE.");
        var corpus = EvalCasesCommand.ResolveCorpus(null);
        var options = DefaultCases with { Cases = limit ?? DefaultCases.Cases };
        var documents = new CorpusReader(corpus).ReadAll(ct);
        var generated = new FusionCaseGenerator(new ModelTokenizerAdapter(tokenizer), options).Generate(documents, null, ct);
        CommonOptions.Diagnostics.MarkupLineInterpolated(
            $"[grey]{generated.Count} cases of {options.ChunksPerCase} chunks × {options.ChunkTokens} tokens from {corpus}, seed {options.Seed}[/]");
        return generated;
    }

    private static void WriteTable(CodecBenchmarkReport report, string model, string device)
    {
        static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";
        var table = new Table()
            .Title($"KV codecs: {Markup.Escape(model)}, {report.Entries} chunk caches ({report.Fp16Bytes / 1e6:F1} MB fp16) from {report.Cases} cases, {Markup.Escape(device)}" +
                (report.CalibrationEntries > 0 ? $"; profiles calibrated on {report.CalibrationEntries} other chunk caches" : string.Empty))
            .AddColumns("codec", "bits/value", "ratio to fp16", "statistics", "encode MB/s/core", "decode MB/s/core",
                $"{report.ReuseMode} KL", $"{report.ReuseMode} top-1", $"{Markup.Escape(report.BlendMode)} KL", $"{Markup.Escape(report.BlendMode)} top-1", $"{Markup.Escape(report.BlendMode)} KL / uncompressed");
        table.AddRow("[grey]uncompressed (same run)[/]", "16", "1.00x", "-", "-", "-",
            F(report.BaselineReuse.MeanKl, "F4"), F(report.BaselineReuse.Top1Agreement, "P1"), F(report.BaselineBlend.MeanKl, "F4"), F(report.BaselineBlend.Top1Agreement, "P1"), "1.00x");
        foreach (var r in report.Codecs)
        {
            table.AddRow(
                r.Label + (r.Codec.IsLossless ? (r.BitExact ? " (bit-exact)" : " [red](NOT bit-exact)[/]") : string.Empty),
                F(r.BitsPerValue, "F2"), F(r.RatioToFp16, "F2") + "x",
                F(r.StatisticsShare, "P1") + (r.ProfileBytes is { } p ? string.Create(CultureInfo.InvariantCulture, $" + {p / 1024.0:F0} KiB profile/model") : string.Empty),
                F(r.EncodeMbPerSecondPerCore, "F0"), F(r.DecodeMbPerSecondPerCore, "F0"),
                F(r.Reuse.MeanKl, "F4"), F(r.Reuse.Top1Agreement, "P1"), F(r.Blend.MeanKl, "F4"), F(r.Blend.Top1Agreement, "P1"),
                F(r.Blend.MeanKl / report.BaselineBlend.MeanKl, "F2") + "x");
        }

        AnsiConsole.Write(table);
        foreach (var s in report.Skipped)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipped {s.Codec}: {s.Reason}[/]");
        }

        AnsiConsole.MarkupLine("[grey]bits/value and ratio count whole containers (header, framing, statistics); +profile rows carry no statistics but need the model's profile (paid once per model and level, not counted in the ratio); MB/s are fp16-equivalent bytes (10^6) on one core, median of the timed passes.[/]");
    }
}
