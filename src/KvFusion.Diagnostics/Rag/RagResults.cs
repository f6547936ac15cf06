namespace KvFusion.Diagnostics.Rag;

/// <summary>Where ingest stands: a stage (<c>precompute</c> or <c>embed</c>) and its chunks done.</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Done">Chunks done in this stage.</param>
/// <param name="Total">Chunks in this stage.</param>
public readonly record struct RagIngestProgress(string Stage, int Done, int Total)
{
    /// <summary>The stage that stores each chunk's KV cache.</summary>
    public const string Precompute = "precompute";

    /// <summary>The stage that embeds each chunk and stores its record.</summary>
    public const string Embed = "embed";
}

/// <summary>What ingest did: how many chunks it found, and how many it had to compute versus found stored.</summary>
/// <param name="Pages">Pages ingested.</param>
/// <param name="Chunks">Distinct chunks of those pages.</param>
/// <param name="Tokens">Tokens in those chunks.</param>
/// <param name="ChunksComputed">Chunks whose KV cache was computed now.</param>
/// <param name="ChunksReused">Chunks whose KV cache was already stored.</param>
/// <param name="ChunksEmbedded">Chunks embedded now.</param>
/// <param name="EmbeddingsReused">Chunks whose record was already in the vector store.</param>
/// <param name="Elapsed">Time from reading the corpus to the last record stored.</param>
public sealed record RagIngestResult(
    int Pages, int Chunks, int Tokens, int ChunksComputed, int ChunksReused, int ChunksEmbedded, int EmbeddingsReused, TimeSpan Elapsed);

/// <summary>A retrieved chunk.</summary>
/// <param name="ChunkId">The chunk's id (hex).</param>
/// <param name="Page">The page it was cut from.</param>
/// <param name="Score">Cosine similarity to the question.</param>
public sealed record RagRetrievedChunk(string ChunkId, string Page, double Score);

/// <summary>One answer of one mode.</summary>
/// <param name="Mode">The fusion mode (<c>full</c> or <c>blend</c>).</param>
/// <param name="TtftMs">Milliseconds from the fusion request to the first generated token.</param>
/// <param name="Text">The answer's text.</param>
/// <param name="Tokens">The answer's token ids.</param>
/// <param name="PromptTokens">Tokens in the fused prompt.</param>
/// <param name="ReusedTokens">Prompt tokens whose stored KV was loaded instead of computed.</param>
/// <param name="RecomputedTokens">Prompt tokens computed in the last layer.</param>
/// <param name="StageMs">Milliseconds of each stage of the fusion (tokenize, load, compute, select...).</param>
public sealed record RagAnswer(
    string Mode, double TtftMs, string Text, IReadOnlyList<int> Tokens, int PromptTokens, int ReusedTokens, int RecomputedTokens, IReadOnlyDictionary<string, double> StageMs);

/// <summary>One question's retrieval, both answers and how they compare.</summary>
/// <param name="Index">1-based position among the questions.</param>
/// <param name="Question">The question.</param>
/// <param name="Retrieved">The chunks retrieved, best first (the fused chunks, in order).</param>
/// <param name="Full">The answer of a full prefill.</param>
/// <param name="Blend">The answer of blend.</param>
public sealed record RagQuestionResult(int Index, RagQuestion Question, IReadOnlyList<RagRetrievedChunk> Retrieved, RagAnswer Full, RagAnswer Blend)
{
    /// <summary>TTFT of full over TTFT of blend (above 1: blend answered sooner).</summary>
    public double Speedup => Blend.TtftMs > 0 ? Full.TtftMs / Blend.TtftMs : double.NaN;

    /// <summary>Whether a retrieved chunk comes from the page that answers the question.</summary>
    public bool RetrievedAnsweringPage => Retrieved.Any(r => string.Equals(r.Page, Question.Page, StringComparison.Ordinal));

    /// <summary>Share of the full answer's tokens that blend reproduced before the first difference.</summary>
    public double PrefixAgreement => RagAgreement.SharedPrefix(Full.Tokens, Blend.Tokens);

    /// <summary>Tokens the two answers share (as multisets), over the longer answer's length.</summary>
    public double TokenOverlap => RagAgreement.TokenOverlap(Full.Tokens, Blend.Tokens);
}

/// <summary>The summary over every question.</summary>
/// <param name="Questions">Questions asked.</param>
/// <param name="MeanTtftFullMs">Mean TTFT of full.</param>
/// <param name="MedianTtftFullMs">Median TTFT of full.</param>
/// <param name="MeanTtftBlendMs">Mean TTFT of blend.</param>
/// <param name="MedianTtftBlendMs">Median TTFT of blend.</param>
/// <param name="MeanSpeedup">Mean of the per-question speedups of blend over full.</param>
/// <param name="MeanPrefixAgreement">Mean <see cref="RagQuestionResult.PrefixAgreement"/>.</param>
/// <param name="MeanTokenOverlap">Mean <see cref="RagQuestionResult.TokenOverlap"/>.</param>
/// <param name="IdenticalAnswers">Questions whose two answers are the same tokens.</param>
/// <param name="RetrievalHits">Questions whose retrieved chunks include the answering page.</param>
public sealed record RagSummary(
    int Questions, double MeanTtftFullMs, double MedianTtftFullMs, double MeanTtftBlendMs, double MedianTtftBlendMs,
    double MeanSpeedup, double MeanPrefixAgreement, double MeanTokenOverlap, int IdenticalAnswers, int RetrievalHits)
{
    /// <summary>The summary of <paramref name="results"/>.</summary>
    /// <exception cref="ArgumentException">No results.</exception>
    public static RagSummary Of(IReadOnlyList<RagQuestionResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        if (results.Count == 0)
        {
            throw new ArgumentException("A summary needs at least one question's result.", nameof(results));
        }

        return new RagSummary(
            results.Count,
            results.Average(r => r.Full.TtftMs),
            Median(results.Select(r => r.Full.TtftMs)),
            results.Average(r => r.Blend.TtftMs),
            Median(results.Select(r => r.Blend.TtftMs)),
            results.Average(r => r.Speedup),
            results.Average(r => r.PrefixAgreement),
            results.Average(r => r.TokenOverlap),
            results.Count(r => r.Full.Tokens.SequenceEqual(r.Blend.Tokens)),
            results.Count(r => r.RetrievedAnsweringPage));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

/// <summary>A whole run: the model, the settings, ingest, every question and the summary.</summary>
/// <param name="Model">The model's folder name.</param>
/// <param name="Options">The settings.</param>
/// <param name="Ingest">What ingest did.</param>
/// <param name="Questions">Each question's result, in order.</param>
/// <param name="Summary">The summary.</param>
public sealed record RagReport(string Model, RagPipelineOptions Options, RagIngestResult Ingest, IReadOnlyList<RagQuestionResult> Questions, RagSummary Summary);
