using System.Globalization;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Transformer;
using KvFusion.SemanticKernel.Embeddings;
using KvFusion.SemanticKernel.VectorStores;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace KvFusion.Diagnostics.Rag;

/// <summary>Where the demo keeps its records and writes its results.</summary>
/// <param name="StoreDirectory">The store folder; the chunk records go to <see cref="ChunkVectorStore.DefaultPathFor"/> of it.</param>
/// <param name="JsonPath">Where to write the JSON report, or null.</param>
/// <param name="PlotPath">Where to write the PNG chart, or null.</param>
public sealed record RagDemoFiles(string StoreDirectory, string? JsonPath = null, string? PlotPath = null);

/// <summary>
/// The RAG demo end to end, as <c>kvfusion demo</c> and samples/RagPipeline run it: ingest with progress bars, a warm-up,
/// every question in both modes, the tables, and the JSON and PNG files.
/// </summary>
public static class RagDemo
{
    /// <summary>
    /// Runs the demo on <paramref name="model"/> with chunk caches in <paramref name="storage"/> (which the caller opened
    /// and disposes). Progress goes to <paramref name="progress"/>, results to <paramref name="output"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid; the message names the value.</exception>
    public static async Task<RagReport> RunAsync(
        TransformerModel model,
        KvStorage storage,
        RagPipelineOptions options,
        RagDemoFiles files,
        IAnsiConsole output,
        IAnsiConsole progress,
        ILoggerFactory? loggers = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(progress);
        options.Validate();
        loggers ??= NullLoggerFactory.Instance;

        using var embeddings = new KvFusionEmbeddingGenerator();
        using var vectors = await ChunkVectorStore.OpenAsync(
            ChunkVectorStore.DefaultPathFor(files.StoreDirectory), new ChunkVectorStoreOptions { EmbeddingGenerator = embeddings }, cancellationToken).ConfigureAwait(false);
        using var records = vectors.GetCollection<string, ChunkRecord>(options.CollectionName);
        await using var engine = new FusionEngine(model, storage.CreateStore(model), null, loggers.CreateLogger<FusionEngine>());
        var pipeline = new RagPipeline(engine, records, embeddings, options, loggers.CreateLogger<RagPipeline>());

        var modelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Directory));
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"RAG demo: model {modelName}, {options.Pages.Count} pages of {options.CorpusPath ?? "../" + RagDemoSet.SharedCorpus}, {options.Questions.Count} questions, top {options.Top}, {options.MaxTokens} tokens per answer, blend recomputes {options.RecomputeRatio:P0}"));
        output.WriteLine($"Store: {Path.GetFullPath(files.StoreDirectory)} (chunk records in {Path.GetFullPath(ChunkVectorStore.DefaultPathFor(files.StoreDirectory))})");

        var ingest = await RagConsoleView.ShowIngestAsync(progress, p => pipeline.IngestAsync(p, cancellationToken)).ConfigureAwait(false);
        await storage.FlushAsync(cancellationToken).ConfigureAwait(false);
        RagConsoleView.WriteIngest(output, ingest);

        await pipeline.WarmUpAsync(options.Questions[0], cancellationToken).ConfigureAwait(false);
        var results = new List<RagQuestionResult>(options.Questions.Count);
        for (var i = 0; i < options.Questions.Count; i++)
        {
            var result = await pipeline.AskAsync(options.Questions[i], i + 1, cancellationToken).ConfigureAwait(false);
            results.Add(result);
            progress.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"question {i + 1}/{options.Questions.Count}: full {result.Full.TtftMs:0.0} ms, blend {result.Blend.TtftMs:0.0} ms"));
        }

        var report = new RagReport(modelName, options, ingest, results, RagSummary.Of(results));
        RagConsoleView.WriteQuestions(output, results);
        RagConsoleView.WriteSummary(output, report);
        if (files.JsonPath is { } json)
        {
            RagReportJson.Write(json, report);
            output.WriteLine($"JSON: {json}");
        }

        if (files.PlotPath is { } plot)
        {
            RagTtftChart.Write(plot, report);
            output.WriteLine($"Chart: {plot}");
        }

        return report;
    }
}
