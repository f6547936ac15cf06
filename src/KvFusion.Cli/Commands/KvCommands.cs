using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Errors;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion kv …</c>: KV containers as files: export chunks' caches, inspect and verify a container, import one into a store.</summary>
internal static class KvCommands
{
    /// <summary>The extension of exported containers.</summary>
    public const string Extension = DirectoryBlobStore.Extension;

    public static Command Create()
    {
        var command = new Command("kv", "KV containers: export chunk caches, inspect and verify a container, import one into a store.");
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Inspect());
        command.Subcommands.Add(Import());
        return command;
    }

    private static Command Export()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var chunksFrom = new Option<string>("--chunks-from")
        {
            Description = "Chunks, as for ask: a .jsonl file (one JSON string or {\"text\": ...} per line), a .json array of strings, or a text file split into --chunk-tokens.",
            Required = true,
        };
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Chunk size when splitting a text file.", DefaultValueFactory = _ => 256 }.AtLeast(1);
        var codec = new Option<string>("--codec") { Description = "Codec: raw, lz4, fp8, cachegen[:1..3].", Required = true };
        var output = new Option<string>("--out") { Description = "Directory for the containers, one CHUNK-ID" + Extension + " per chunk.", Required = true };
        var sink = new Option<string?>("--sink") { Description = "Sink chunks are precomputed behind: none, bos, prefix (default: the engine's)." };
        var prefix = new Option<string?>("--prefix") { Description = "System prompt, for --sink prefix." };
        var command = new Command("export", "Precompute each chunk's KV cache and write it as a container file.")
        {
            model, threads, device, chunksFrom, chunkTokens, codec, output, sink, prefix,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var spec = CodecOptions.Parse(parse.GetValue(codec))!.Value;
            var sinkKind = EvalCommands.ParseSink(parse.GetValue(sink));
            var prefixText = parse.GetValue(prefix);
            if (sinkKind == SinkKind.Prefix && string.IsNullOrEmpty(prefixText))
            {
                throw new CliException("--sink prefix needs --prefix TEXT.");
            }

            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            CodecOptions.EnsureAvailable(spec, m);
            var chunks = AskCommand.ReadChunks(parse.GetValue(chunksFrom)!, m, parse.GetValue(chunkTokens));
            var outDir = Path.GetFullPath(parse.GetValue(output)!);
            Directory.CreateDirectory(outDir);
            var store = new InMemoryKvStore();
            var rows = new List<(string Id, int Tokens, long Fp16Bytes, long Bytes)>();
            await using (var engine = new FusionEngine(m, store))
            {
                await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask($"{chunks.Count} chunks → {spec}", maxValue: chunks.Count);
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var chunk in chunks)
                    {
                        var id = (await engine.PutChunkAsync(chunk, sinkKind, prefixText, ct).ConfigureAwait(false)).ToString();
                        task.Increment(1);
                        // The same text twice is one chunk, one file.
                        if (!seen.Add(id))
                        {
                            continue;
                        }

                        var key = store.Keys.Single(k => k.Kind == CacheEntryKind.Chunk && k.Id == id);
                        var entry = (await store.GetAsync(key, ct).ConfigureAwait(false))!;
                        var written = await WriteAtomicallyAsync(Path.Combine(outDir, id + Extension), entry, spec, ct).ConfigureAwait(false);
                        rows.Add((id, entry.TokenCount, entry.ByteSize, written.TotalBytes));
                    }
                }).ConfigureAwait(false);
            }

            var table = new Table().Title($"kv export: {Markup.Escape(Path.GetFileName(m.Directory))}, codec {spec} → {Markup.Escape(outDir)}")
                .AddColumns("chunk id", "tokens", "bytes", "fp16 bytes", "ratio to fp16");
            foreach (var r in rows)
            {
                table.AddRow(r.Id, Int(r.Tokens), Int(r.Bytes), Int(r.Fp16Bytes), Ratio(r.Fp16Bytes, r.Bytes));
            }

            table.AddRow("[bold]total[/]", Int(rows.Sum(r => r.Tokens)), Int(rows.Sum(r => r.Bytes)), Int(rows.Sum(r => r.Fp16Bytes)), Ratio(rows.Sum(r => r.Fp16Bytes), rows.Sum(r => r.Bytes)));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command Inspect()
    {
        var file = new Argument<string>("FILE") { Description = "A KV container file." };
        var command = new Command("inspect", "Print a container's header and sections and verify every checksum and section (exit 0 only when it is valid).") { file };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(() =>
        {
            var path = parse.GetValue(file)!;
            var blob = ReadFile(path);
            KvContainerInspection inspection;
            try
            {
                inspection = KvContainerReader.Inspect(blob);
            }
            catch (KvContainerException e)
            {
                throw Invalid(path, e);
            }

            WriteInspection(path, inspection);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command Import()
    {
        var model = CommonOptions.Model();
        var file = new Argument<string>("FILE") { Description = "A KV container file." };
        var storeDir = new Option<string>("--store") { Description = "Store directory (one container file per key) to put it in.", Required = true };
        var command = new Command("import", "Check a container against the model (fingerprints, shape, every section) and put it into a directory store.")
        {
            file, model, storeDir,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var path = parse.GetValue(file)!;
            var blob = ReadFile(path);
            // Only fingerprints and shapes are needed, which loading gives without computing anything.
            using var backend = CommonOptions.CreateBackend("cpu", 1);
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            CachedKv entry;
            KvContainerHeader header;
            try
            {
                header = KvContainerReader.ReadHeader(blob.Span);
                entry = KvContainerReader.Read(blob, KvContainerExpectation.FromModel(m));
            }
            catch (KvContainerException e)
            {
                throw Invalid(path, e);
            }

            // A chunk's id is the hash of its tokens under the model: a container whose tokens hash to another id
            // would put one text's KV under another's key.
            if (entry.HasTokenIds && entry.Key.Kind == CacheEntryKind.Chunk)
            {
                var id = ChunkId.Compute(m.Fingerprint.Model, m.Fingerprint.Tokenizer, entry.Tokens.ToArray()).ToString();
                if (!string.Equals(id, entry.Key.Id, StringComparison.Ordinal))
                {
                    throw new InputFileException(path, null, null, $"the container's key names chunk {entry.Key.Id}, but its {entry.TokenCount} tokens are chunk {id} under this model.");
                }
            }

            var store = new DirectoryBlobStore(parse.GetValue(storeDir)!);
            await store.PutAsync(entry.Key, blob, ct).ConfigureAwait(false);
            AnsiConsole.MarkupLineInterpolated(
                $"imported {entry.Key} ({entry.TokenCount} tokens, codec {header.Codec}, {blob.Length:N0} bytes) → {store.PathOf(entry.Key)}");
            return 0;
        }));
        return command;
    }

    /// <summary>Writes beside the target and renames it into place, so a reader never sees half a container.</summary>
    private static async Task<KvContainerWriteResult> WriteAtomicallyAsync(string path, CachedKv entry, KvCodecSpec codec, CancellationToken ct)
    {
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        try
        {
            KvContainerWriteResult result;
            var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                result = await KvContainerWriter.WriteAsync(stream, entry, codec, null, ct).ConfigureAwait(false);
            }

            File.Move(temp, path, overwrite: true);
            return result;
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static ReadOnlyMemory<byte> ReadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputFileException(path, null, null, "container file not found.");
        }

        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputFileException(path, null, null, $"cannot be read: {e.Message}", e);
        }
    }

    /// <summary>The reader's one-line reason, with the offset where it was found when the message does not say it.</summary>
    private static InputFileException Invalid(string path, KvContainerException e) =>
        new(path, null, null, e.Offset is { } at && !e.Message.Contains(at.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $"{e.Message.TrimEnd('.')} (at byte {at}).")
            : e.Message, e);

    private static void WriteInspection(string path, KvContainerInspection inspection)
    {
        var h = inspection.Header;
        var fp16 = 2L * 2 * h.LayerCount * h.KvHeads * h.TokenCount * h.HeadDim;
        var header = new Table().Title($"kv container {Markup.Escape(path)}").AddColumns("field", "value");
        void Row(string field, string value) => header.AddRow(Markup.Escape(field), Markup.Escape(value));
        Row("format version", Int(h.FormatVersion));
        Row("key", h.Key.ToString());
        Row("entry kind", h.Key.Kind.ToString());
        Row("id", h.Key.Id);
        Row("variant", h.Key.Variant ?? string.Empty);
        Row("model fingerprint", h.ModelFingerprint);
        Row("tokenizer fingerprint", h.TokenizerFingerprint);
        Row("tokens", Int(h.TokenCount));
        Row("layers", Int(h.LayerCount));
        Row("kv heads", Int(h.KvHeads));
        Row("head dim", Int(h.HeadDim));
        Row("codec", h.Codec.ToString());
        Row("codec parameters", h.CodecParameters.Length == 0
            ? "none"
            : $"{Int(h.CodecParameters.Length)} bytes: {Convert.ToHexStringLower(h.CodecParameters.Span[..Math.Min(32, h.CodecParameters.Length)])}{(h.CodecParameters.Length > 32 ? "…" : string.Empty)}");
        Row("token ids", h.TokenIds is { } ids ? $"{Int(ids.Count)}: {string.Join(' ', ids.Take(16))}{(ids.Count > 16 ? " …" : string.Empty)}" : "not stored");
        Row("hidden-state layers", h.HiddenStateLayers.Count == 0 ? "none" : string.Join(", ", h.HiddenStateLayers));
        Row("hidden size", Int(h.HiddenSize));
        Row("sections", Int(h.SectionCount));
        Row("header bytes", Int(inspection.HeaderBytes));
        Row("total bytes", Int(inspection.TotalBytes));
        Row("fp16 bytes of K and V", Int(fp16));
        Row("ratio to fp16", Ratio(fp16, inspection.TotalBytes));
        AnsiConsole.Write(header);

        var sections = new Table().Title("sections").AddColumns("#", "layer", "kind", "offset", "payload bytes", "checksum");
        foreach (var s in inspection.Sections)
        {
            sections.AddRow(Int(s.Index), Int(s.Layer), s.Kind.ToString(), Int(s.Offset), Int(s.PayloadBytes), $"0x{s.Checksum:x16}");
        }

        AnsiConsole.Write(sections);
        AnsiConsole.MarkupLineInterpolated($"[green]valid[/]: header and {inspection.Sections.Count} sections verified (checksums and decode)");
    }

    private static string Int(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ratio(long fp16, long bytes) =>
        bytes > 0 ? ((double)fp16 / bytes).ToString("F2", CultureInfo.InvariantCulture) + "x" : "n/a";
}
