namespace KvFusion.Cache.Chunking;

/// <summary>
/// Cuts a document into token windows for precomputing chunk KV caches. The document is encoded once, so the chunks'
/// tokens are exactly the document's tokens (what a full prefill of the document would see), and windows of at most
/// <see cref="ChunkingOptions.MaxTokens"/> step by MaxTokens - OverlapTokens.
/// </summary>
/// <remarks>
/// A byte-level BPE token can hold part of a multi-byte UTF-8 character, so a window edge can fall inside a
/// character; its text would then carry U+FFFD on both sides and concatenating the chunks would not give the document
/// back. An end that would split a character moves back (the chunk gets fewer tokens) and a start moves forward (the
/// overlap gets smaller), until both fall between characters. Deterministic: the same text and options give the same
/// chunks.
/// </remarks>
public sealed class DocumentChunker
{
    /// <summary>
    /// Tokens decoded on each side of a boundary to test it: a character is at most 4 UTF-8 bytes and a token at
    /// least one byte, so 4 tokens always reach a split character's lead byte (before) or its end (after).
    /// </summary>
    private const int BoundaryWindow = 4;

    private readonly ITextTokenizer _tokenizer;

    /// <summary>Creates a chunker.</summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> is out of range.</exception>
    public DocumentChunker(ITextTokenizer tokenizer, ChunkingOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _tokenizer = tokenizer;
        Options = options;
    }

    /// <summary>The options in use.</summary>
    public ChunkingOptions Options { get; }

    /// <summary>
    /// Chunks <paramref name="text"/>. With no overlap the chunks' texts concatenate to the text (for a tokenizer that
    /// decodes its own encoding back to the input, as byte-level BPE does).
    /// </summary>
    public IReadOnlyList<DocumentChunk> Chunk(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = _tokenizer.Encode(text);
        var chunks = new List<DocumentChunk>();
        var start = 0;
        while (start < tokens.Length)
        {
            var limit = Math.Min(start + Options.MaxTokens, tokens.Length);
            var end = limit;
            while (end > start && !IsCharacterBoundary(_tokenizer, tokens, end))
            {
                end--;
            }

            if (end == start)
            {
                // No whole-character cut inside the window (one character spans more than MaxTokens tokens, possible
                // only for tiny MaxTokens): the size limit wins, because a chunk's KV must fit what was budgeted.
                end = limit;
            }

            chunks.Add(new DocumentChunk(tokens[start..end], _tokenizer.Decode(tokens.AsSpan(start, end - start)), start, chunks.Count));
            if (end == tokens.Length)
            {
                break;
            }

            // Moving the next start forward (less overlap), never back, keeps the overlap within the option and
            // guarantees progress: `end` itself is a valid start.
            var next = Math.Max(end - Options.OverlapTokens, start + 1);
            while (next < end && !IsCharacterBoundary(_tokenizer, tokens, next))
            {
                next++;
            }

            start = next;
        }

        return chunks;
    }

    /// <summary>
    /// Whether cutting <paramref name="tokens"/> before index <paramref name="boundary"/> keeps every character whole:
    /// the text decoded before it must not end in U+FFFD, nor the text after it start with one, unless that U+FFFD
    /// is a real character of the text (then decoding the two sides apart equals decoding them together).
    /// </summary>
    internal static bool IsCharacterBoundary(ITextTokenizer tokenizer, ReadOnlySpan<int> tokens, int boundary)
    {
        if (boundary <= 0 || boundary >= tokens.Length)
        {
            return true;
        }

        var lo = Math.Max(0, boundary - BoundaryWindow);
        var hi = Math.Min(tokens.Length, boundary + BoundaryWindow);
        var before = tokenizer.Decode(tokens[lo..boundary]);
        var after = tokenizer.Decode(tokens[boundary..hi]);
        if (!before.EndsWith('\uFFFD') && !after.StartsWith('\uFFFD'))
        {
            return true;
        }

        // Rare: U+FFFD at the edge. A split character decodes differently apart than together; a real U+FFFD does not.
        return string.Equals(string.Concat(before, after), tokenizer.Decode(tokens[lo..hi]), StringComparison.Ordinal);
    }
}
