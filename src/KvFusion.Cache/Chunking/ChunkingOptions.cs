namespace KvFusion.Cache.Chunking;

/// <summary>How <see cref="DocumentChunker"/> cuts a document into token windows.</summary>
public sealed record ChunkingOptions
{
    /// <summary>Most tokens in one chunk (&gt; 0). A chunk can be shorter where a full window would split a character.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>
    /// Tokens a chunk shares with the one before it (0 &lt;= overlap &lt; <see cref="MaxTokens"/>), so a sentence cut
    /// at a boundary is whole in one of the two. At most this many: less where the nominal start would split a character.
    /// </summary>
    public int OverlapTokens { get; init; }

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (MaxTokens <= 0)
        {
            throw new ArgumentException($"{nameof(MaxTokens)} must be positive; got {MaxTokens}.");
        }

        if (OverlapTokens < 0 || OverlapTokens >= MaxTokens)
        {
            throw new ArgumentException($"{nameof(OverlapTokens)} must be at least 0 and less than {nameof(MaxTokens)} ({MaxTokens}); got {OverlapTokens}.");
        }
    }
}
