namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>Settings of <see cref="KvFusionRetrievalChatClient"/>: how many chunks it retrieves and which it keeps.</summary>
public sealed class KvFusionRetrievalOptions
{
    /// <summary>The most chunks a search may return (<see cref="Top"/> must not exceed it).</summary>
    public const int MaxTop = 100;

    /// <summary>How many chunks are retrieved per question, from 1 to <see cref="MaxTop"/>; 3 by default.</summary>
    public int Top { get; set; } = 3;

    /// <summary>
    /// The lowest score a chunk may have to be injected; null keeps every result. Scores are the source's own (for
    /// <c>ChunkRecord</c>'s cosine similarity, higher is closer, from -1 to 1); results without a score are kept.
    /// </summary>
    public double? MinScore { get; set; }

    /// <summary>Throws when a setting is out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the setting and its value.</exception>
    public void Validate()
    {
        if (Top is < 1 or > MaxTop)
        {
            throw new ArgumentOutOfRangeException(nameof(Top), Top, $"Top must be from 1 to {MaxTop}.");
        }

        if (MinScore is { } min && !double.IsFinite(min))
        {
            throw new ArgumentOutOfRangeException(nameof(MinScore), MinScore, "MinScore must be null or a finite number.");
        }
    }

    /// <summary>A validated copy, so later changes to the caller's instance do not reach a client built from it.</summary>
    internal KvFusionRetrievalOptions Snapshot()
    {
        Validate();
        return new KvFusionRetrievalOptions { Top = Top, MinScore = MinScore };
    }
}
