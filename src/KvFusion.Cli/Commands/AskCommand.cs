using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Generation;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion ask</c>: answer a query over chunks with a chosen fusion mode.</summary>
internal static class AskCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var chunksFrom = new Option<string>("--chunks-from")
        {
            Description = "Chunks: a .jsonl file (one JSON string or {\"text\": ...} per line), a .json array of strings, or a text file that is split into chunks of --chunk-tokens.",
            Required = true,
        };
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Chunk size when splitting a text file.", DefaultValueFactory = _ => 256 };
        var query = new Option<string>("--query") { Description = "The question or text to continue.", Required = true };
        var prefix = new Option<string?>("--prefix") { Description = "Optional system prompt placed before the chunks." };
        var mode = new Option<string>("--mode") { Description = "full, prefix, reuse or blend (optionally blend:R[:VARIANT]).", DefaultValueFactory = _ => "blend" };
        var ratio = new Option<double?>("--ratio") { Description = "Blend recompute ratio (default 0.15)." };
        var sink = new Option<string?>("--sink") { Description = "Sink for chunk precompute: none, bos, prefix." };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 64 };
        var command = new Command("ask", "Fuse stored or given chunks with a query and stream the answer.")
        {
            model, threads, device, chunksFrom, chunkTokens, query, prefix, mode, ratio, sink, maxTokens,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            FusionModeSpec spec;
            try
            {
                spec = FusionModeSpec.Parse(parse.GetValue(mode)!);
            }
            catch (FusionException e)
            {
                throw new CliException(e.Message);
            }

            if (parse.GetValue(ratio) is { } r)
            {
                if (spec.Mode != FusionMode.Blend)
                {
                    throw new CliException("--ratio applies to blend only.");
                }

                if (!(r > 0 && r <= 1))
                {
                    throw new CliException("--ratio must be in (0, 1].");
                }

                spec = spec with { Ratio = r };
            }

            var (fusionMode, blend) = FusionModeCatalog.Resolve(spec);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var chunks = ReadChunks(parse.GetValue(chunksFrom)!, m, parse.GetValue(chunkTokens));
            using var engine = new FusionEngine(m, new InMemoryKvStore());
            var request = new FusionRequest
            {
                Prefix = parse.GetValue(prefix),
                Chunks = chunks,
                Query = parse.GetValue(query),
                Mode = fusionMode,
                Blend = blend,
                Sink = EvalCommands.ParseSink(parse.GetValue(sink)),
                ReserveTokens = parse.GetValue(maxTokens) + 1,
            };
            using var context = await engine.FuseAsync(request, ct).ConfigureAwait(false);
            var stdout = Console.Out;
            var options = new SamplingOptions { MaxTokens = parse.GetValue(maxTokens) };
            await foreach (var token in context.GenerateAsync(options, null, ct).ConfigureAwait(false))
            {
                await stdout.WriteAsync(token.Text).ConfigureAwait(false);
                await stdout.FlushAsync(ct).ConfigureAwait(false);
            }

            await stdout.WriteLineAsync().ConfigureAwait(false);
            var rep = context.Report;
            CommonOptions.Diagnostics.MarkupLineInterpolated(
                $"[grey]{rep.Mode}: {rep.TotalTokens} prompt tokens ({rep.ChunkTokens} in {chunks.Count} chunks, {rep.ChunksPrecomputed} precomputed now), reused {rep.ReusedTokens}, computed {rep.ComputeFraction:P1} of full, fused in {rep.Total.TotalMilliseconds:F1} ms ({string.Join(", ", rep.StageTimes.Select(kv => $"{kv.Key} {kv.Value.TotalMilliseconds:F1}"))})[/]");
            return 0;
        }));
        return command;
    }

    private static List<ChunkInput> ReadChunks(string path, Engine.Transformer.TransformerModel model, int chunkTokens)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"Chunk file not found: {path}");
        }

        var ext = Path.GetExtension(path).ToLowerInvariant();
        var chunks = new List<ChunkInput>();
        if (ext is ".jsonl" or ".json")
        {
            try
            {
                var lines = ext == ".json" ? [File.ReadAllText(path)] : File.ReadAllLines(path);
                var lineNo = 0;
                foreach (var line in lines)
                {
                    lineNo++;
                    if (string.IsNullOrWhiteSpace(line))
                    {
                        continue;
                    }

                    using var doc = JsonDocument.Parse(line);
                    var e = doc.RootElement;
                    foreach (var item in e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().ToList() : [e])
                    {
                        var text = item.ValueKind == JsonValueKind.String ? item.GetString()
                            : item.ValueKind == JsonValueKind.Object && item.TryGetProperty("text", out var t) ? t.GetString() : null;
                        chunks.Add(ChunkInput.FromText(text ?? throw new CliException($"{path}:{lineNo.ToString(CultureInfo.InvariantCulture)}: expected a string or an object with \"text\".")));
                    }
                }
            }
            catch (JsonException e)
            {
                throw new CliException($"{path} is not valid JSON: {e.Message}");
            }
        }
        else
        {
            var tokenizer = model.Tokenizer ?? throw new CliException("The model has no tokenizer to split the text file.");
            var chunker = new DocumentChunker(new ModelTokenizerAdapter(tokenizer), new ChunkingOptions { MaxTokens = chunkTokens, OverlapTokens = 0 });
            chunks.AddRange(chunker.Chunk(File.ReadAllText(path)).Select(c => ChunkInput.FromTokens(c.Tokens)));
        }

        return chunks.Count > 0 ? chunks : throw new CliException($"{path} holds no chunks.");
    }
}
