using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Errors;
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
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Chunk size when splitting a text file.", DefaultValueFactory = _ => 256 }.AtLeast(1);
        var query = new Option<string>("--query") { Description = "The question or text to continue.", Required = true };
        var prefix = new Option<string?>("--prefix") { Description = "Optional system prompt placed before the chunks." };
        var mode = new Option<string>("--mode") { Description = "full, prefix, reuse or blend (optionally blend:R[:VARIANT]).", DefaultValueFactory = _ => "blend" };
        var ratio = new Option<double?>("--ratio") { Description = "Blend recompute ratio (default 0.15)." };
        var sink = new Option<string?>("--sink") { Description = "Sink for chunk precompute: none, bos, prefix." };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 64 }.Between(0, int.MaxValue - 1);
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
                throw new CliException($"--mode: {e.Message}");
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

            FusionMode fusionMode;
            BlendOptions blend;
            try
            {
                (fusionMode, blend) = FusionModeCatalog.Resolve(spec);
            }
            catch (FusionException e)
            {
                throw new CliException($"--mode: {e.Message}");
            }

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

    internal static List<ChunkInput> ReadChunks(string path, Engine.Transformer.TransformerModel model, int chunkTokens)
    {
        if (!File.Exists(path))
        {
            throw new InputFileException(path, null, null, "chunk file not found.");
        }

        var ext = Path.GetExtension(path).ToLowerInvariant();
        List<ChunkInput> chunks;
        try
        {
            chunks = ext switch
            {
                ".jsonl" => ReadJsonLines(path),
                ".json" => ReadJsonArray(path),
                _ => SplitText(path, model, chunkTokens),
            };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputFileException(path, null, null, $"cannot be read: {e.Message}", e);
        }

        return chunks.Count > 0 ? chunks : throw new InputFileException(path, null, null, "holds no chunks.");
    }

    /// <summary>One chunk per line (a JSON string or an object with <c>text</c>), or an array of them on a line.</summary>
    private static List<ChunkInput> ReadJsonLines(string path)
    {
        var chunks = new List<ChunkInput>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            using var doc = Parse(line, path, lineNo);
            if (doc.RootElement.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in doc.RootElement.EnumerateArray())
                {
                    chunks.Add(ChunkInput.FromText(ChunkText(item, path, lineNo, string.Create(CultureInfo.InvariantCulture, $"[{i++}]"))));
                }
            }
            else
            {
                chunks.Add(ChunkInput.FromText(ChunkText(doc.RootElement, path, lineNo, null)));
            }
        }

        return chunks;
    }

    /// <summary>A JSON array whose items are strings or objects with <c>text</c>.</summary>
    private static List<ChunkInput> ReadJsonArray(string path)
    {
        using var doc = Parse(File.ReadAllText(path), path, null);
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw new InputFileException(path, null, null, $"a .json chunk file must be an array of chunks, got {Describe(doc.RootElement)}.");
        }

        var chunks = new List<ChunkInput>();
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            chunks.Add(ChunkInput.FromText(ChunkText(item, path, null, string.Create(CultureInfo.InvariantCulture, $"[{chunks.Count}]"))));
        }

        return chunks;
    }

    private static List<ChunkInput> SplitText(string path, Engine.Transformer.TransformerModel model, int chunkTokens)
    {
        var tokenizer = model.Tokenizer ?? throw new CliException("The model has no tokenizer to split the text file.");
        var chunker = new DocumentChunker(new ModelTokenizerAdapter(tokenizer), new ChunkingOptions { MaxTokens = chunkTokens, OverlapTokens = 0 });
        return chunker.Chunk(File.ReadAllText(path)).Select(c => ChunkInput.FromTokens(c.Tokens)).ToList();
    }

    private static JsonDocument Parse(string json, string path, int? lineNo)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            // In a .json file the parser knows the line (0-based); in a .jsonl file the line is the one being read.
            var line = lineNo ?? (e.LineNumber is { } l ? (int)l + 1 : null);
            throw new InputFileException(path, line, null, $"not valid JSON: {e.Message}", e);
        }
    }

    private static string ChunkText(JsonElement item, string path, int? lineNo, string? at)
    {
        if (item.ValueKind == JsonValueKind.String)
        {
            return item.GetString()!;
        }

        if (item.ValueKind != JsonValueKind.Object)
        {
            throw new InputFileException(path, lineNo, at, $"expected a string or an object with \"text\", got {Describe(item)}.");
        }

        var field = at is null ? "text" : at + ".text";
        return !item.TryGetProperty("text", out var text)
            ? throw new InputFileException(path, lineNo, field, "missing; a chunk object needs its text.")
            : text.ValueKind == JsonValueKind.String
                ? text.GetString()!
                : throw new InputFileException(path, lineNo, field, $"must be a string, got {Describe(text)}.");
    }

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
