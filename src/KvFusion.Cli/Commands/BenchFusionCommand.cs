using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Generation;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion bench fusion</c>: TTFT of each fusion mode against full prefill, by number of chunks.</summary>
internal static class BenchFusionCommand
{
    internal sealed record Row(int Chunks, int PromptTokens, string Mode, double TtftMs, double RatioToFull, double ComputeFraction);

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var chunks = new Option<string>("--chunks") { Description = "Comma-separated chunk counts.", DefaultValueFactory = _ => "2,4,8,16" };
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Tokens per chunk.", DefaultValueFactory = _ => 256 }.AtLeast(1);
        var queryTokens = new Option<int>("--query-tokens") { Description = "Tokens in the query.", DefaultValueFactory = _ => 32 }.AtLeast(1);
        var ratio = new Option<double>("--ratio") { Description = "Blend recompute ratio.", DefaultValueFactory = _ => BlendOptions.DefaultRatio };
        var modes = new Option<string?>("--modes") { Description = "Modes to time (default: full,prefix,reuse,blend:RATIO,blend:RATIO:ref)." };
        var runs = new Option<int>("--runs") { Description = "Timed runs per point (median), after a warm-up.", DefaultValueFactory = _ => 3 };
        var json = new Option<string?>("--json") { Description = "Write results as JSON." };
        var png = new Option<string?>("--png") { Description = "Write a TTFT plot." };
        var codec = CodecOptions.Codec("Store chunk and prefix-block caches as containers with this codec (raw, lz4, fp8, cachegen[:1..3]), so TTFT includes decoding (default: decoded in memory).");
        var command = new Command("fusion", "Time to first token of fused prompts per mode and chunk count, with the ratio to full prefill measured in the same run.")
        {
            model, threads, device, chunks, chunkTokens, queryTokens, ratio, modes, runs, json, png, codec,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var counts = BenchCommands.ParseList(parse.GetValue(chunks)!, "--chunks");
            var size = parse.GetValue(chunkTokens);
            var qlen = parse.GetValue(queryTokens);
            var r = parse.GetValue(ratio);
            if (size <= 0 || qlen <= 0 || !(r > 0 && r <= 1))
            {
                throw new CliException("--chunk-tokens and --query-tokens must be positive and --ratio in (0, 1].");
            }

            var modeSpecs = EvalCommands.ParseModes(parse.GetValue(modes) ?? string.Create(CultureInfo.InvariantCulture, $"full,prefix,reuse,blend:{r},blend:{r}:ref"));
            if (!modeSpecs.Any(s => s.Mode == FusionMode.Full))
            {
                modeSpecs = [new FusionModeSpec(FusionMode.Full, 1), .. modeSpecs];
            }

            var runCount = Math.Max(1, parse.GetValue(runs));
            var codecSpec = CodecOptions.Parse(parse.GetValue(codec));
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            using var engine = new FusionEngine(m, CodecOptions.Store(codecSpec, m));
            var context = m.Config.MaxPositionEmbeddings;
            var rows = new List<Row>();
            var skipped = new List<int>();
            await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
            {
                foreach (var count in counts)
                {
                    var total = (count * size) + qlen;
                    if (total > context)
                    {
                        skipped.Add(count);
                        continue;
                    }

                    var task = ctx.AddTask($"{count} chunks × {size} tokens", maxValue: modeSpecs.Count);
                    var chunkInputs = new List<ChunkInput>();
                    for (var c = 0; c < count; c++)
                    {
                        var tokens = EngineBenchmark.SyntheticPrompt(size, m.Config.VocabSize, seed: (ulong)(1000 + c));
                        await engine.PutChunkAsync(ChunkInput.FromTokens(tokens), cancellationToken: ct).ConfigureAwait(false);
                        chunkInputs.Add(ChunkInput.FromTokens(tokens));
                    }

                    var query = EngineBenchmark.SyntheticPrompt(qlen, m.Config.VocabSize, seed: 7);
                    double fullMs = double.NaN;
                    foreach (var spec in modeSpecs.OrderBy(s => s.Mode == FusionMode.Full ? 0 : 1))
                    {
                        var (mode, blend) = FusionModeCatalog.Resolve(spec);
                        var request = new FusionRequest { Chunks = chunkInputs, QueryTokens = query, Mode = mode, Blend = blend, ReserveTokens = 1 };
                        using (await engine.FuseAsync(request, ct).ConfigureAwait(false))
                        {
                        }

                        var times = new List<double>();
                        double fraction = 0;
                        for (var i = 0; i < runCount; i++)
                        {
                            var sw = Stopwatch.StartNew();
                            using var fused = await engine.FuseAsync(request, ct).ConfigureAwait(false);
                            _ = TokenSampler.ArgMax(fused.Logits);
                            times.Add(sw.Elapsed.TotalMilliseconds);
                            fraction = fused.Report.ComputeFraction;
                        }

                        var ms = EngineBenchmark.Median(times);
                        if (mode == FusionMode.Full)
                        {
                            fullMs = ms;
                        }

                        rows.Add(new Row(count, total, spec.ToString(), ms, fullMs / ms, fraction));
                        task.Increment(1);
                    }
                }
            }).ConfigureAwait(false);

            var codecTitle = codecSpec is { } cs ? $", codec {cs}" : string.Empty;
            var table = new Table().Title($"fusion TTFT: {Markup.Escape(Path.GetFileName(m.Directory))}, chunks of {size} tokens, query {qlen}, {Markup.Escape(backend.DeviceName)}{codecTitle}")
                .AddColumns("chunks", "prompt tokens", "mode", "computed", "TTFT ms (median)", "full / mode");
            foreach (var row in rows)
            {
                table.AddRow(
                    row.Chunks.ToString(CultureInfo.InvariantCulture), row.PromptTokens.ToString(CultureInfo.InvariantCulture), row.Mode,
                    row.ComputeFraction.ToString("P1", CultureInfo.InvariantCulture), row.TtftMs.ToString("F1", CultureInfo.InvariantCulture),
                    row.RatioToFull.ToString("F2", CultureInfo.InvariantCulture) + "x");
            }

            AnsiConsole.Write(table);
            if (CodecOptions.Describe(engine.Store) is { } stored)
            {
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]{stored}[/]");
            }

            if (skipped.Count > 0)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]skipped {string.Join(", ", skipped)} chunks: beyond the model's context of {context} tokens[/]");
            }

            if (parse.GetValue(json) is { } jsonPath)
            {
                WriteJson(jsonPath, Path.GetFileName(m.Directory), backend.DeviceName, size, qlen, codecSpec, rows, skipped);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {jsonPath}[/]");
            }

            if (parse.GetValue(png) is { } pngPath)
            {
                FusionPlots.Ttft(pngPath, $"{Path.GetFileName(m.Directory)}: TTFT by chunks of {size} tokens", rows);
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {pngPath}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static void WriteJson(string path, string model, string device, int size, int qlen, KvCodecSpec? codec, List<Row> rows, List<int> skipped)
    {
        using var report = JsonReport.Create(path, model, device);
        var w = report.Writer;
        if (codec is { } c)
        {
            w.WriteString("codec", c.ToString());
        }

        w.WriteNumber("chunk_tokens", size);
        w.WriteNumber("query_tokens", qlen);
        w.WriteStartArray("results");
        foreach (var r in rows)
        {
            w.WriteStartObject();
            w.WriteNumber("chunks", r.Chunks);
            w.WriteNumber("prompt_tokens", r.PromptTokens);
            w.WriteString("mode", r.Mode);
            w.WriteNumber("ttft_ms", Math.Round(r.TtftMs, 3));
            w.WriteNumber("ttft_ratio_to_full", Math.Round(r.RatioToFull, 3));
            w.WriteNumber("compute_fraction", Math.Round(r.ComputeFraction, 4));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("skipped_chunk_counts");
        foreach (var s in skipped)
        {
            w.WriteNumberValue(s);
        }

        w.WriteEndArray();
    }
}
