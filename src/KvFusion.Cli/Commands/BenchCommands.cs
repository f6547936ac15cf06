using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cuda.Backend;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Models;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion bench …</c>: performance measurements that print a table and write JSON.</summary>
internal static class BenchCommands
{
    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks (tables on standard output, JSON with --json).");
        command.Subcommands.Add(Engine());
        command.Subcommands.Add(BenchFusionCommand.Create());
        command.Subcommands.Add(BenchKernelsCommand.Create());
        command.Subcommands.Add(BenchCodecCommand.Create());
        command.Subcommands.Add(BenchEvictionCommand.Create());
        command.Subcommands.Add(BenchStoreCommand.Create());
        command.Subcommands.Add(BenchServeCommand.Create());
        command.Subcommands.Add(BenchBatchCommand.Create());
        command.Subcommands.Add(BenchLoaderCommand.Create());
        return command;
    }

    internal static int[] ParseList(string text, string what)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0)
            {
                throw new CliException($"{what}: '{parts[i]}' is not a positive integer.");
            }
        }

        return values.Length > 0 ? values : throw new CliException($"{what}: give at least one value.");
    }

    private const string FlopNote =
        "TFLOP/s count the work done: per layer the q, k, v, o, gate, up and down GEMMs and causal attention (QK^T and PV over the keys each position sees), the output head for the last prompt token only, nothing for the embedding lookup.";

    private static string Tflops(double value) => value.ToString(value >= 10 ? "F1" : "G3", CultureInfo.InvariantCulture);

    private static Command Engine()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var promptTokens = new Option<string>("--prompt-tokens") { Description = "Comma-separated prompt lengths.", DefaultValueFactory = _ => "128,512,2048" };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Tokens decoded after each prompt.", DefaultValueFactory = _ => 64 }.AtLeast(0);
        var runs = new Option<int>("--runs") { Description = "Measured runs per length (after one warm-up).", DefaultValueFactory = _ => 5 };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var command = new Command("engine", "Prefill tokens/s, decode tokens/s and time to first token per prompt length.")
        {
            model, threads, device, promptTokens, genTokens, runs, json,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var lengths = ParseList(parse.GetValue(promptTokens)!, "--prompt-tokens");
            var gen = parse.GetValue(genTokens);
            var runCount = Math.Max(1, parse.GetValue(runs));
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var context = m.Config.MaxPositionEmbeddings;
            if (lengths.Max() > context)
            {
                throw new CliException($"A prompt of {lengths.Max()} tokens exceeds the model's context ({context}).");
            }

            // Decode continues after the prompt, so it is capped by the room left in the context.
            using var session = m.CreateSession(Math.Min(context, lengths.Max() + gen));
            var results = new List<EngineBenchmarkResult>();
            await CommonOptions.Diagnostics.Progress().StartAsync(ctx =>
            {
                foreach (var len in lengths)
                {
                    var task = ctx.AddTask($"{len} prompt tokens", maxValue: runCount + 1);
                    var prompt = EngineBenchmark.SyntheticPrompt(len, m.Config.VocabSize);
                    var steps = Math.Min(gen, context - len);
                    EngineBenchmark.MeasureOnce(session, prompt, steps, ct);
                    task.Increment(1);
                    var samples = new List<(double, double, double)>();
                    for (var r = 0; r < runCount; r++)
                    {
                        samples.Add(EngineBenchmark.MeasureOnce(session, prompt, steps, ct));
                        task.Increment(1);
                    }

                    results.Add(EngineBenchmark.Summarize(m.Config, len, steps, samples));
                }

                return Task.CompletedTask;
            }).ConfigureAwait(false);

            // On a GPU the same-run baseline is cuBLAS's own peak: prefill FLOP/s (ForwardFlops: the GEMMs and the causal
            // attention the pass runs, the head for the last row only) as its share.
            double? peak = backend is CudaBackend cuda
                ? cuda.MeasureCublasTflops(8192, 8192, 8192, TensorDType.BF16, 10)
                : null;
            var table = new Table().Title($"engine: {Markup.Escape(Path.GetFileName(m.Directory))} on {Markup.Escape(backend.DeviceName)}")
                .AddColumns("prompt tokens", "prefill tok/s (median)", "prefill min..max", "TTFT ms", "decode tok/s", "decoded",
                    peak is null ? "prefill TFLOP/s" : $"prefill TFLOP/s (share of cuBLAS peak {peak:F0})");

            foreach (var r in results)
            {
                var cells = new List<string>
                {
                    r.PromptTokens.ToString(CultureInfo.InvariantCulture), r.PrefillTokensPerSecond.ToString("F0", CultureInfo.InvariantCulture),
                    $"{r.PrefillTokensPerSecondMin:F0}..{r.PrefillTokensPerSecondMax:F0}", r.TtftMilliseconds.ToString("F1", CultureInfo.InvariantCulture),
                    r.GenTokens > 0 ? r.DecodeTokensPerSecond.ToString("F0", CultureInfo.InvariantCulture) : "n/a (context full)",
                    r.GenTokens.ToString(CultureInfo.InvariantCulture),
                    peak is null ? Tflops(r.PrefillTflops) : $"{Tflops(r.PrefillTflops)} ({r.PrefillTflops / peak.Value:P0})",
                };

                table.AddRow([.. cells]);
            }

            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(FlopNote)}[/]");
            AnsiConsole.MarkupLine("[grey]Same-run comparison with llama.cpp: dotnet run -c Release --project bench/KvFusion.Benchmarks -- engine (see README).[/]");
            if (parse.GetValue(json) is { } path)
            {
                WriteJson(path, Path.GetFileName(m.Directory), backend.DeviceName, results, peak, m.ParameterCount);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
            }

            return 0;
        }));
        return command;
    }

    internal static void WriteJson(string path, string model, string device, IEnumerable<EngineBenchmarkResult> results, double? cublasPeakTflops = null, long parameters = 0)
    {
        using var report = JsonReport.Create(path, model, device);
        var w = report.Writer;
        if (cublasPeakTflops is { } peak)
        {
            w.WriteNumber("cublas_peak_tflops", Math.Round(peak, 1));
        }

        w.WriteNumber("parameters", parameters);
        w.WriteString("flop_count", FlopNote);

        w.WriteStartArray("results");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteNumber("prompt_tokens", r.PromptTokens);
            w.WriteNumber("gen_tokens", r.GenTokens);
            w.WriteNumber("prefill_tokens_per_s", Math.Round(r.PrefillTokensPerSecond, 2));
            if (r.GenTokens > 0)
            {
                w.WriteNumber("decode_tokens_per_s", Math.Round(r.DecodeTokensPerSecond, 2));
            }
            else
            {
                w.WriteNull("decode_tokens_per_s");
            }

            w.WriteNumber("ttft_ms", Math.Round(r.TtftMilliseconds, 3));
            w.WriteNumber("runs", r.Runs);
            w.WriteNumber("prefill_tokens_per_s_min", Math.Round(r.PrefillTokensPerSecondMin, 2));
            w.WriteNumber("prefill_tokens_per_s_max", Math.Round(r.PrefillTokensPerSecondMax, 2));
            w.WriteNumber("prefill_flops", r.PrefillFlops);
            w.WriteNumber("prefill_tflops", Math.Round(r.PrefillTflops, 6));
            if (cublasPeakTflops is { } p)
            {
                w.WriteNumber("prefill_share_of_cublas_peak", Math.Round(r.PrefillTflops / p, 4));
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
