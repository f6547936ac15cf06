using System.Diagnostics;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Prompts;
using KvFusion.Engine.Generation;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.VectorData;

namespace KvFusion.Diagnostics.Rag;

/// <summary>
/// Retrieval-augmented answering over stored chunk caches: ingest pages of a corpus (chunk, precompute each chunk's KV
/// cache, embed, store a record per chunk), then answer questions from the top-k retrieved chunks twice, with a full
/// prefill and with blend, timing each to its first token.
/// </summary>
/// <remarks>
/// Chunks already stored are neither computed nor embedded again, so a second run over the same store reuses what
/// the first stored. Before a question is timed, the KV of its retrieved chunks is read once (into host memory when
/// the store is tiered), so both modes start from the same cache state and TTFT compares computation, not disk reads.
/// </remarks>
public sealed class RagPipeline
{
    private readonly FusionEngine _engine;
    private readonly VectorStoreCollection<string, ChunkRecord> _records;
    private readonly IEmbeddingGenerator<string, Embedding<float>> _embeddings;
    private readonly ILogger _logger;
    private readonly ChatPromptLayout _layout;

    /// <summary>Creates a pipeline over an engine (and its store), a chunk record collection and an embedding generator.</summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid, or the model has no tokenizer.</exception>
    public RagPipeline(
        FusionEngine engine,
        VectorStoreCollection<string, ChunkRecord> records,
        IEmbeddingGenerator<string, Embedding<float>> embeddings,
        RagPipelineOptions? options = null,
        ILogger<RagPipeline>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(embeddings);
        Options = options ?? new RagPipelineOptions();
        Options.Validate();
        if (engine.Model.Tokenizer is null)
        {
            throw new ArgumentException("The model has no tokenizer to chunk the corpus with.", nameof(engine));
        }

        _engine = engine;
        _records = records;
        _embeddings = embeddings;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _layout = ChatPromptLayout.ForModel(engine.Model);
    }

    /// <summary>The settings.</summary>
    public RagPipelineOptions Options { get; }

    /// <summary>
    /// Reads the configured pages, chunks them, stores each chunk's KV cache (computing only those not stored yet),
    /// embeds the chunks the collection lacks and stores their records.
    /// </summary>
    /// <exception cref="FileNotFoundException">The corpus is not there.</exception>
    /// <exception cref="CorpusException">The corpus cannot be read, or lacks a configured page.</exception>
    public async Task<RagIngestResult> IngestAsync(IProgress<RagIngestProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        var pages = ReadPages(cancellationToken);
        var chunker = new DocumentChunker(new ModelTokenizerAdapter(_engine.Model.Tokenizer!), new ChunkingOptions { MaxTokens = Options.ChunkTokens });
        var chunks = new List<(string Page, DocumentChunk Chunk, ChunkId Id)>();
        var seen = new HashSet<ChunkId>();
        foreach (var page in pages)
        {
            foreach (var chunk in chunker.Chunk(page.Text))
            {
                var id = _engine.ChunkIdOf(chunk.Tokens);
                if (seen.Add(id))
                {
                    chunks.Add((page.Path, chunk, id));
                }
            }
        }

        var computed = 0;
        for (var i = 0; i < chunks.Count; i++)
        {
            var (_, chunk, id) = chunks[i];
            if (!await _engine.Store.ContainsAsync(_engine.ChunkKeyOf(id), cancellationToken).ConfigureAwait(false))
            {
                await _engine.PutChunkAsync(ChunkInput.FromTokens(chunk.Tokens), cancellationToken: cancellationToken).ConfigureAwait(false);
                computed++;
            }

            progress?.Report(new RagIngestProgress(RagIngestProgress.Precompute, i + 1, chunks.Count));
        }

        await _records.EnsureCollectionExistsAsync(cancellationToken).ConfigureAwait(false);
        var stored = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var record in _records.GetAsync(chunks.Select(c => c.Id.ToString()), null, cancellationToken).ConfigureAwait(false))
        {
            stored.Add(record.Id);
        }

        var missing = chunks.Where(c => !stored.Contains(c.Id.ToString())).ToList();
        var embedded = 0;
        progress?.Report(new RagIngestProgress(RagIngestProgress.Embed, 0, missing.Count));
        foreach (var batch in missing.Chunk(Options.EmbeddingBatch))
        {
            var vectors = await _embeddings.GenerateAsync(batch.Select(c => c.Chunk.Text), null, cancellationToken).ConfigureAwait(false);
            var records = batch.Select((c, k) => new ChunkRecord
            {
                Id = c.Id.ToString(),
                Document = c.Page,
                Text = c.Chunk.Text,
                Embedding = vectors[k].Vector,
            });
            await _records.UpsertAsync(records, cancellationToken).ConfigureAwait(false);
            embedded += batch.Length;
            progress?.Report(new RagIngestProgress(RagIngestProgress.Embed, embedded, missing.Count));
        }

        var result = new RagIngestResult(
            pages.Count, chunks.Count, chunks.Sum(c => c.Chunk.Tokens.Length), computed, chunks.Count - computed, embedded, chunks.Count - embedded, clock.Elapsed);
        _logger.LogInformation(
            "Ingested {Pages} pages: {Chunks} chunks, {Computed} computed, {Reused} already stored, {Embedded} embedded",
            result.Pages, result.Chunks, result.ChunksComputed, result.ChunksReused, result.ChunksEmbedded);
        return result;
    }

    /// <summary>
    /// Answers <paramref name="question"/> once in each mode, untimed, so that the first timed question does not pay
    /// for compiling and allocating what every later one reuses.
    /// </summary>
    public async Task WarmUpAsync(RagQuestion question, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(question);
        var retrieved = await RetrieveAsync(question.Text, cancellationToken).ConfigureAwait(false);
        await StageAsync(retrieved, cancellationToken).ConfigureAwait(false);
        await AnswerAsync(question.Text, retrieved, FusionMode.Full, cancellationToken).ConfigureAwait(false);
        await AnswerAsync(question.Text, retrieved, FusionMode.Blend, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Retrieves the top chunks for <paramref name="question"/> and answers from them with full prefill and with blend.</summary>
    /// <param name="question">The question.</param>
    /// <param name="index">Its 1-based position, for the result.</param>
    /// <param name="cancellationToken">Cancels retrieval and generation.</param>
    /// <exception cref="InvalidOperationException">Nothing was retrieved (the collection is empty: ingest first).</exception>
    public async Task<RagQuestionResult> AskAsync(RagQuestion question, int index, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(question);
        var retrieved = await RetrieveAsync(question.Text, cancellationToken).ConfigureAwait(false);
        await StageAsync(retrieved, cancellationToken).ConfigureAwait(false);
        var full = await AnswerAsync(question.Text, retrieved, FusionMode.Full, cancellationToken).ConfigureAwait(false);
        var blend = await AnswerAsync(question.Text, retrieved, FusionMode.Blend, cancellationToken).ConfigureAwait(false);
        var result = new RagQuestionResult(index, question, retrieved, full, blend);
        _logger.LogDebug("Question {Index}: TTFT full {Full:F1} ms, blend {Blend:F1} ms", index, full.TtftMs, blend.TtftMs);
        return result;
    }

    private List<CorpusDocument> ReadPages(CancellationToken cancellationToken)
    {
        var corpus = RagDemoSet.FindCorpus(Options.CorpusPath);
        var all = new CorpusReader(corpus).ReadAll(cancellationToken);
        var byPath = all.ToDictionary(d => d.Path, StringComparer.Ordinal);
        var pages = new List<CorpusDocument>(Options.Pages.Count);
        foreach (var page in Options.Pages)
        {
            pages.Add(byPath.TryGetValue(page, out var document)
                ? document
                : throw new CorpusException($"The corpus {corpus} has no page {page}.") { FilePath = corpus });
        }

        return pages;
    }

    private async Task<List<RagRetrievedChunk>> RetrieveAsync(string question, CancellationToken cancellationToken)
    {
        var embedding = await _embeddings.GenerateAsync([question], null, cancellationToken).ConfigureAwait(false);
        var retrieved = new List<RagRetrievedChunk>(Options.Top);
        await foreach (var hit in _records.SearchAsync(embedding[0].Vector, Options.Top, null, cancellationToken).ConfigureAwait(false))
        {
            retrieved.Add(new RagRetrievedChunk(hit.Record.Id, hit.Record.Document, hit.Score ?? double.NaN));
        }

        return retrieved.Count > 0
            ? retrieved
            : throw new InvalidOperationException($"Nothing was retrieved for \"{question}\": the collection '{Options.CollectionName}' is empty (ingest first).");
    }

    /// <summary>Reads each retrieved chunk's KV once, so both timed modes find it where a hot chunk lives.</summary>
    private async Task StageAsync(List<RagRetrievedChunk> retrieved, CancellationToken cancellationToken)
    {
        foreach (var chunk in retrieved)
        {
            _ = await _engine.Store.GetAsync(_engine.ChunkKeyOf(ChunkId.Parse(chunk.ChunkId)), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<RagAnswer> AnswerAsync(string question, List<RagRetrievedChunk> retrieved, FusionMode mode, CancellationToken cancellationToken)
    {
        var parts = new List<PromptPart>(retrieved.Count + 1);
        parts.AddRange(retrieved.Select(r => new ChunkPart(ChunkInput.FromId(ChunkId.Parse(r.ChunkId)))));
        parts.Add(new TextPart(question));
        var prompt = _layout.Lay([PromptMessage.Text(PromptRole.System, Options.SystemPrompt), new PromptMessage(PromptRole.User, parts)]);
        var request = prompt.ToRequest(mode, BlendOptions.Default(Options.RecomputeRatio), Options.MaxTokens + 1);
        var sampling = new SamplingOptions { Temperature = 0, MaxTokens = Options.MaxTokens };

        var clock = Stopwatch.StartNew();
        double? ttft = null;
        var tokens = new List<int>(Options.MaxTokens);
        var text = new System.Text.StringBuilder();
        using var context = await _engine.FuseAsync(request, cancellationToken).ConfigureAwait(false);
        await foreach (var token in context.GenerateAsync(sampling, null, cancellationToken).ConfigureAwait(false))
        {
            ttft ??= clock.Elapsed.TotalMilliseconds;
            if (token.Id >= 0)
            {
                tokens.Add(token.Id);
            }

            text.Append(token.Text);
        }

        var report = context.Report;
        var recomputed = report.RecomputedPerLayer.Count == 0 ? report.TotalTokens : report.RecomputedPerLayer[^1];
        var stages = report.StageTimes.ToDictionary(kv => kv.Key, kv => kv.Value.TotalMilliseconds, StringComparer.Ordinal);
        return new RagAnswer(report.Mode, ttft ?? clock.Elapsed.TotalMilliseconds, text.ToString(), tokens, report.TotalTokens, report.ReusedTokens, recomputed, stages);
    }
}
