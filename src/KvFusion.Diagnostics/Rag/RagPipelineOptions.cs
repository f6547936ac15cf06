using System.Globalization;

namespace KvFusion.Diagnostics.Rag;

/// <summary>Settings of a <see cref="RagPipeline"/> run: what is ingested, how much is retrieved and generated.</summary>
public sealed record RagPipelineOptions
{
    /// <summary>The corpus: a tar(.xz) archive or a directory of .rst/.txt files; null: ../shared/corpus/pydocs.tar.xz (<see cref="RagDemoSet.FindCorpus"/>).</summary>
    public string? CorpusPath { get; init; }

    /// <summary>The pages of the corpus to ingest (default: <see cref="RagDemoSet.Pages"/>).</summary>
    public IReadOnlyList<string> Pages { get; init; } = RagDemoSet.Pages;

    /// <summary>The questions, asked in order (default: <see cref="RagDemoSet.Questions"/>).</summary>
    public IReadOnlyList<RagQuestion> Questions { get; init; } = RagDemoSet.Questions;

    /// <summary>Most tokens in one chunk.</summary>
    public int ChunkTokens { get; init; } = 256;

    /// <summary>Chunks retrieved per question (top-k).</summary>
    public int Top { get; init; } = 4;

    /// <summary>Most tokens generated per answer (greedy).</summary>
    public int MaxTokens { get; init; } = 32;

    /// <summary>Share of chunk tokens blend recomputes.</summary>
    public double RecomputeRatio { get; init; } = 0.15;

    /// <summary>The system prompt before the retrieved chunks.</summary>
    public string SystemPrompt { get; init; } = "Answer the question from the Python documentation above.";

    /// <summary>The vector collection the chunk records are kept in.</summary>
    public string CollectionName { get; init; } = "pydocs-rag";

    /// <summary>Chunks embedded per call of the embedding generator.</summary>
    public int EmbeddingBatch { get; init; } = 16;

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentException">A value is out of range or missing; the message names it.</exception>
    public void Validate()
    {
        if (CorpusPath is not null && string.IsNullOrWhiteSpace(CorpusPath))
        {
            throw new ArgumentException("CorpusPath must name the corpus archive or directory (or be null for the shared corpus).");
        }

        if (Pages is not { Count: > 0 } || Pages.Any(string.IsNullOrWhiteSpace))
        {
            throw new ArgumentException("Pages must list at least one page of the corpus, none of them empty.");
        }

        if (Questions is not { Count: > 0 } || Questions.Any(q => q is null || string.IsNullOrWhiteSpace(q.Text)))
        {
            throw new ArgumentException("Questions must hold at least one question, none of them empty.");
        }

        Require(ChunkTokens >= 8, $"ChunkTokens must be at least 8, got {ChunkTokens}.");
        Require(Top >= 1, $"Top must be at least 1, got {Top}.");
        Require(MaxTokens >= 1, $"MaxTokens must be at least 1, got {MaxTokens}.");
        Require(EmbeddingBatch >= 1, $"EmbeddingBatch must be at least 1, got {EmbeddingBatch}.");
        Require(RecomputeRatio is > 0 and <= 1, string.Create(CultureInfo.InvariantCulture, $"RecomputeRatio must be in (0, 1], got {RecomputeRatio}."));
        Require(!string.IsNullOrWhiteSpace(CollectionName), "CollectionName must not be empty.");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
