namespace KvFusion.Cache.Chunking;

/// <summary>One window of a chunked document.</summary>
/// <param name="Tokens">The chunk's token ids, a slice of the whole document's encoding (not a re-encoding of <paramref name="Text"/>).</param>
/// <param name="Text">Exactly the decoding of <paramref name="Tokens"/>.</param>
/// <param name="StartToken">Index of the first token in the document's encoding.</param>
/// <param name="Index">Position of the chunk in the document (0, 1, ...).</param>
public sealed record DocumentChunk(int[] Tokens, string Text, int StartToken, int Index)
{
    /// <summary>Index just past the last token in the document's encoding.</summary>
    public int EndToken => StartToken + Tokens.Length;
}
