using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Errors;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion ingest PATH…</c>: chunks text files, folders of them and .tar(.xz) archives, precomputes every chunk's
/// KV cache and stores it in the configured tiers. A chunk already stored is skipped, so a run that was interrupted
/// resumes where it stopped; entries acknowledged before an interruption are drained to the tiers on the way out.
/// </summary>
internal static class IngestCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("PATH") { Description = "Text files, folders of .txt/.rst files, or .tar/.tar.xz archives of them.", Arity = ArgumentArity.OneOrMore };
        var store = StorageOptions.Store();
        var tenant = StorageOptions.Tenant();
        var chunkTokens = new Option<int>("--chunk-tokens") { Description = "Tokens per chunk.", DefaultValueFactory = _ => 256 }.AtLeast(1);
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var sink = new Option<string?>("--sink") { Description = "Sink chunks are precomputed behind: none, bos, prefix (default: the engine's)." };
        var prefix = new Option<string?>("--prefix") { Description = "System prompt, for --sink prefix." };
        var command = new Command("ingest", "Chunk documents, precompute every chunk's KV cache and store it (chunks already stored are skipped, so an interrupted run resumes).")
        {
            paths, store, tenant, chunkTokens, model, threads, device, sink, prefix,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var sinkKind = EvalCommands.ParseSink(parse.GetValue(sink));
            var prefixText = parse.GetValue(prefix);
            if (sinkKind == SinkKind.Prefix && string.IsNullOrEmpty(prefixText))
            {
                throw new CliException("--sink prefix needs --prefix TEXT.");
            }

            var documents = ReadDocuments(parse.GetValue(paths)!, ct);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var tokenizer = m.Tokenizer ?? throw new CliException("The model has no tokenizer to chunk the documents with.");
            var chunker = new DocumentChunker(new ModelTokenizerAdapter(tokenizer), new ChunkingOptions { MaxTokens = parse.GetValue(chunkTokens) });
            var chunks = new List<DocumentChunk>();
            foreach (var document in documents)
            {
                chunks.AddRange(chunker.Chunk(document.Text));
            }

            if (chunks.Count == 0)
            {
                throw new CliException("The documents hold no text to chunk.");
            }

            await using var storage = await StorageOptions.OpenAsync(parse.GetValue(store), parse.GetValue(tenant), ct).ConfigureAwait(false);
            var kvStore = storage.CreateStore(m);
            var computed = 0;
            var tokens = 0L;
            var clock = Stopwatch.StartNew();
            await using (var engine = new FusionEngine(m, kvStore))
            {
                await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask($"{chunks.Count} chunks from {documents.Count} documents", maxValue: chunks.Count);
                    foreach (var chunk in chunks)
                    {
                        var before = kvStore.EntriesWritten;
                        await engine.PutChunkAsync(ChunkInput.FromTokens(chunk.Tokens), sinkKind, prefixText, ct).ConfigureAwait(false);
                        if (kvStore.EntriesWritten > before)
                        {
                            computed++;
                            tokens += chunk.Tokens.Length;
                        }

                        task.Increment(1);
                        task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{chunks.Count} chunks from {documents.Count} documents: {computed} computed, {(int)task.Value - computed} already stored"));
                    }

                    var flush = ctx.AddTask("writing to the tiers", maxValue: 1);
                    await storage.FlushAsync(ct).ConfigureAwait(false);
                    flush.Value = 1;
                }).ConfigureAwait(false);
            }

            var seconds = clock.Elapsed.TotalSeconds;
            var table = new Table().Title($"ingest: {Markup.Escape(Path.GetFileName(m.Directory))} → {Markup.Escape(StorageOptions.Describe(storage.Options))}, tenant {Markup.Escape(storage.Options.Tenant)}, codec {storage.Codec}")
                .AddColumns("documents", "chunks", "computed now", "already stored", "tokens computed", "container bytes", "fp16 bytes", "seconds", "tokens/s");
            table.AddRow(
                Int(documents.Count), Int(chunks.Count), Int(computed), Int(chunks.Count - computed), Int(tokens),
                Int(kvStore.BytesWritten), Int(kvStore.Fp16BytesWritten),
                seconds.ToString("F1", CultureInfo.InvariantCulture), (tokens / Math.Max(seconds, 1e-9)).ToString("F0", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    /// <summary>Every document under the paths: a file's text, or a folder's or archive's .txt/.rst documents.</summary>
    internal static List<CorpusDocument> ReadDocuments(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var documents = new List<CorpusDocument>();
        foreach (var path in paths)
        {
            var name = path.ToLowerInvariant();
            if (Directory.Exists(path) || (File.Exists(path) && (name.EndsWith(".tar", StringComparison.Ordinal) || name.EndsWith(".tar.xz", StringComparison.Ordinal))))
            {
                try
                {
                    documents.AddRange(new CorpusReader(path).ReadAll(cancellationToken));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A damaged archive surfaces as the decompressor's own exception types.
                    throw new InputFileException(path, null, null, $"cannot be read as documents: {e.Message}", e);
                }
            }
            else if (File.Exists(path))
            {
                try
                {
                    documents.Add(new CorpusDocument(path, File.ReadAllText(path)));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new InputFileException(path, null, null, $"cannot be read: {e.Message}", e);
                }
            }
            else
            {
                throw new InputFileException(path, null, null, "not found.");
            }
        }

        return documents;
    }

    private static string Int(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
