using System.CommandLine;
using System.Globalization;
using KvFusion.Diagnostics.Benchmarks;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench batch</c>: decode throughput of continuous batching's step at several widths, against
/// single-sequence decode measured in the same run (<see cref="BatchDecodeBenchmark"/>).
/// </summary>
internal static class BenchBatchCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var sequences = new Option<string>("--sequences") { Description = "Comma-separated batch widths (sequences decoded per step).", DefaultValueFactory = _ => "1,4,16,64" };
        var context = new Option<int>("--context") { Description = "Tokens each sequence holds before the measured steps.", DefaultValueFactory = _ => 128 }.AtLeast(1);
        var steps = new Option<int>("--steps") { Description = "Measured decode steps per width.", DefaultValueFactory = _ => 16 }.Between(1, 4096);
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var command = new Command("batch", "Decode tokens/s of one batched step over N sequences against single-sequence decode in the same run.")
        {
            model, threads, device, sequences, context, steps, json,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var widths = BenchCommands.ParseList(parse.GetValue(sequences)!, "--sequences");
            var ctx = parse.GetValue(context);
            var stepCount = parse.GetValue(steps);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            if (ctx + stepCount + 1 > m.Config.MaxPositionEmbeddings)
            {
                throw new CliException($"--context {ctx} and --steps {stepCount} exceed the model's context ({m.Config.MaxPositionEmbeddings}).");
            }

            BatchDecodeResult? solo = null;
            var results = new List<BatchDecodeResult>();
            await CommonOptions.Diagnostics.Progress().StartAsync(p =>
            {
                var task = p.AddTask("single-sequence decode", maxValue: 1);
                BatchDecodeBenchmark.MeasureSolo(m, ctx, Math.Min(4, stepCount), ct);
                solo = BatchDecodeBenchmark.MeasureSolo(m, ctx, stepCount, ct);
                task.Value = 1;
                foreach (var w in widths)
                {
                    var t = p.AddTask($"{w} sequences per step", maxValue: 1);
                    BatchDecodeBenchmark.MeasureBatch(m, w, ctx, Math.Min(2, stepCount), ct);
                    results.Add(BatchDecodeBenchmark.MeasureBatch(m, w, ctx, stepCount, ct));
                    t.Value = 1;
                }

                return Task.CompletedTask;
            }).ConfigureAwait(false);

            var table = new Table().Title($"batch decode: {Markup.Escape(Path.GetFileName(m.Directory))} on {Markup.Escape(backend.DeviceName)}, {ctx} tokens of context, {stepCount} steps")
                .AddColumns("sequences", "step ms (median)", "step min..max", "decode tok/s", "x single-sequence decode");
            table.AddRow("1 (solo decode, baseline)", F(solo!.StepMs, "F2"), $"{F(solo.StepMsMin, "F2")}..{F(solo.StepMsMax, "F2")}", F(solo.TokensPerSecond, "F0"), "1.00x");
            foreach (var r in results)
            {
                table.AddRow(r.Sequences.ToString(CultureInfo.InvariantCulture), F(r.StepMs, "F2"), $"{F(r.StepMsMin, "F2")}..{F(r.StepMsMax, "F2")}", F(r.TokensPerSecond, "F0"), F(r.TokensPerSecond / solo.TokensPerSecond, "F2") + "x");
            }

            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("[grey]Each step decodes one token of every sequence through one forward pass (GEMMs over all rows, attention per sequence). Solo decode is InferenceSession.Decode, the path without batching.[/]");
            if (parse.GetValue(json) is { } path)
            {
                using var report = JsonReport.Create(path, Path.GetFileName(m.Directory), backend.DeviceName);
                var w = report.Writer;
                w.WriteNumber("context_tokens", ctx);
                w.WriteNumber("steps", stepCount);
                w.WriteNumber("machine_cores", Environment.ProcessorCount);
                Write(w, "solo", solo, solo);
                w.WriteStartArray("batches");
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    Fields(w, r, solo);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static void Write(System.Text.Json.Utf8JsonWriter w, string name, BatchDecodeResult r, BatchDecodeResult solo)
    {
        w.WriteStartObject(name);
        Fields(w, r, solo);
        w.WriteEndObject();
    }

    private static void Fields(System.Text.Json.Utf8JsonWriter w, BatchDecodeResult r, BatchDecodeResult solo)
    {
        w.WriteNumber("sequences", r.Sequences);
        w.WriteNumber("step_ms_p50", Math.Round(r.StepMs, 3));
        w.WriteNumber("step_ms_min", Math.Round(r.StepMsMin, 3));
        w.WriteNumber("step_ms_max", Math.Round(r.StepMsMax, 3));
        w.WriteNumber("decode_tokens_per_s", Math.Round(r.TokensPerSecond, 2));
        w.WriteNumber("ratio_to_solo", Math.Round(r.TokensPerSecond / solo.TokensPerSecond, 3));
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
