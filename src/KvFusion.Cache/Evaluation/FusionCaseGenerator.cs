using KvFusion.Cache.Chunking;

namespace KvFusion.Cache.Evaluation;

/// <summary>Options of <see cref="FusionCaseGenerator"/> (docs/fusion-cases.md).</summary>
public sealed record FusionCaseOptions
{
    /// <summary>Number of cases.</summary>
    public int Cases { get; init; } = 12;

    /// <summary>Chunks in each case's prompt, each from a different document.</summary>
    public int ChunksPerCase { get; init; } = 6;

    /// <summary>Tokens in each chunk, exactly.</summary>
    public int ChunkTokens { get; init; } = 256;

    /// <summary>Tokens of the query, exactly.</summary>
    public int QueryTokens { get; init; } = 12;

    /// <summary>Tokens of the answer, exactly.</summary>
    public int AnswerTokens { get; init; } = 24;

    /// <summary>Seed of the generator's SplitMix64: the same seed, corpus and tokenizer give the same cases.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>System prompt put before the chunks in every case, or null for none.</summary>
    public string? Prefix { get; init; }

    /// <summary>
    /// Conversation-handoff cases: the case's texts are joined (blank line between) into one segment, the context an
    /// agent read in one pass and hands to another, so a fusion loses no cross-chunk attention and what a mode loses
    /// is the model's own (cross-model sharing). Off: the chunks stay separate, as in the CacheBlend evaluation.
    /// </summary>
    public bool Handoff { get; init; }

    /// <summary>What joins a handoff case's texts into its one segment.</summary>
    public const string HandoffSeparator = "\n\n";

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        RequirePositive(Cases, nameof(Cases));
        RequirePositive(ChunksPerCase, nameof(ChunksPerCase));
        RequirePositive(ChunkTokens, nameof(ChunkTokens));
        RequirePositive(QueryTokens, nameof(QueryTokens));
        RequirePositive(AnswerTokens, nameof(AnswerTokens));

        // The query starts after at least one token of its chunk (a sentence start follows something).
        if (QueryTokens + AnswerTokens >= ChunkTokens)
        {
            throw new ArgumentException(
                $"{nameof(QueryTokens)} + {nameof(AnswerTokens)} ({QueryTokens} + {AnswerTokens}) must be less than {nameof(ChunkTokens)} ({ChunkTokens}): both come from inside one chunk.");
        }
    }

    private static void RequirePositive(int value, string name)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{name} must be positive; got {value}.");
        }
    }
}

/// <summary>
/// Makes fusion evaluation cases from a corpus, as the CacheBlend evaluation does: each case has
/// <see cref="FusionCaseOptions.ChunksPerCase"/> chunks of exactly <see cref="FusionCaseOptions.ChunkTokens"/> tokens
/// from distinct random documents; the query repeats the start of a sentence of one of them (the source, at a random
/// position among the chunks) and the answer is what follows it, so answering well needs that chunk's KV.
/// </summary>
/// <remarks>
/// Every text is the decoding of a token slice of a whole-document encoding, and is kept only if encoding it alone
/// gives back exactly that slice. So chunks, query and answer have exactly the configured token counts when a
/// consumer encodes them, and no text splits a UTF-8 character (no U+FFFD). Deterministic for a seed: the random
/// numbers come from our own SplitMix64, never System.Random, whose sequence is not a contract.
/// </remarks>
public sealed class FusionCaseGenerator
{
    /// <summary>Consecutive offsets tried in a document for a chunk whose text re-encodes to its own tokens.</summary>
    private const int OffsetAttempts = 64;

    private readonly ITextTokenizer _tokenizer;

    /// <summary>Creates a generator.</summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> is out of range.</exception>
    public FusionCaseGenerator(ITextTokenizer tokenizer, FusionCaseOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _tokenizer = tokenizer;
        Options = options;
    }

    /// <summary>The options in use.</summary>
    public FusionCaseOptions Options { get; }

    /// <summary>Generates the cases from <paramref name="documents"/> (in the given order; <see cref="CorpusReader"/> sorts by path).</summary>
    /// <param name="documents">The corpus.</param>
    /// <param name="progress">Receives the number of cases done after each case.</param>
    /// <param name="cancellationToken">Stops between chunks.</param>
    /// <exception cref="InvalidOperationException">The corpus has too few usable documents for a case.</exception>
    public IReadOnlyList<FusionCase> Generate(IReadOnlyList<CorpusDocument> documents, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        GenerateDetailed(documents, progress, cancellationToken).Select(c => c.Case).ToList();

    /// <summary>Like <see cref="Generate"/>, with where every piece came from (for tests and diagnostics).</summary>
    internal IReadOnlyList<GeneratedCase> GenerateDetailed(IReadOnlyList<CorpusDocument> documents, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(documents);
        var o = Options;
        var rng = new SplitMix64(o.Seed);

        // Documents are encoded only when first picked: a case set touches a small part of the corpus.
        var encoded = new int[]?[documents.Count];
        int[] Tokens(int doc) => encoded[doc] ??= _tokenizer.Encode(documents[doc].Text);

        var cases = new List<GeneratedCase>(o.Cases);
        var order = Enumerable.Range(0, documents.Count).ToArray();
        for (var c = 0; c < o.Cases; c++)
        {
            rng.Shuffle(order);
            PickedChunk? source = null;
            QuerySpan query = default;
            var others = new List<PickedChunk>(o.ChunksPerCase - 1);
            foreach (var doc in order)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (TryPickChunk(doc, Tokens(doc), rng) is not { } chunk)
                {
                    continue;
                }

                if (source is null)
                {
                    // The first usable document in this case's order that also has a usable sentence is the source.
                    if (TryPickQuery(chunk.Tokens, rng) is { } q)
                    {
                        source = chunk;
                        query = q;
                    }
                }
                else
                {
                    others.Add(chunk);
                }

                if (source is not null && others.Count == o.ChunksPerCase - 1)
                {
                    break;
                }
            }

            if (source is null || others.Count < o.ChunksPerCase - 1)
            {
                throw new CorpusException(
                    $"Case {c}: the corpus ({documents.Count} documents) does not have {o.ChunksPerCase} documents with a usable {o.ChunkTokens}-token chunk"
                    + (source is null ? " and a sentence start that leaves room for the query and answer" : string.Empty)
                    + ". Use fewer or shorter chunks, or a larger corpus.");
            }

            var sourceIndex = rng.NextInt(o.ChunksPerCase);
            var chunks = new List<PickedChunk>(others);
            chunks.Insert(sourceIndex, source);
            var texts = chunks.Select(p => p.Text).ToList();
            var fusionCase = new FusionCase(o.Prefix, o.Handoff ? [string.Join(FusionCaseOptions.HandoffSeparator, texts)] : texts, query.Query, query.Answer);
            cases.Add(new GeneratedCase(
                fusionCase,
                chunks.Select(p => new GeneratedChunk(documents[p.Document].Path, p.StartToken, p.Tokens)).ToList(),
                sourceIndex,
                query.Start));
            progress?.Report(cases.Count);
        }

        return cases;
    }

    /// <summary>
    /// A chunk of exactly ChunkTokens tokens at a random offset of a document, moved forward from that offset until
    /// its text has no U+FFFD and encodes back to the same tokens; null for a short or unusable document.
    /// </summary>
    private PickedChunk? TryPickChunk(int document, int[] tokens, SplitMix64 rng)
    {
        var n = Options.ChunkTokens;
        if (tokens.Length < n)
        {
            return null;
        }

        var offsets = tokens.Length - n + 1;
        var first = rng.NextInt(offsets);
        for (var attempt = 0; attempt < Math.Min(OffsetAttempts, offsets); attempt++)
        {
            var start = (first + attempt) % offsets;
            var slice = tokens.AsSpan(start, n);
            var text = _tokenizer.Decode(slice);
            if (text.Contains('\uFFFD', StringComparison.Ordinal) || string.IsNullOrWhiteSpace(text) || !RoundTrips(text, slice))
            {
                continue;
            }

            return new PickedChunk(document, start, slice.ToArray(), text);
        }

        return null;
    }

    /// <summary>
    /// A sentence start inside the chunk (after ". ", "? ", "! " or at the start of a line) with room for the query
    /// and the answer after it, chosen at random among those whose query and answer texts are clean and re-encode to
    /// their own tokens; null when the chunk has none.
    /// </summary>
    private QuerySpan? TryPickQuery(int[] chunk, SplitMix64 rng)
    {
        int qn = Options.QueryTokens, an = Options.AnswerTokens;
        var candidates = new List<int>();
        for (var p = 1; p + qn + an <= chunk.Length; p++)
        {
            if (IsSentenceStart(chunk, p))
            {
                candidates.Add(p);
            }
        }

        var order = candidates.ToArray();
        rng.Shuffle(order);
        foreach (var p in order)
        {
            var query = _tokenizer.Decode(chunk.AsSpan(p, qn));
            var answer = _tokenizer.Decode(chunk.AsSpan(p + qn, an));
            if (IsClean(query) && IsClean(answer) && query.Any(char.IsLetter)
                && RoundTrips(query, chunk.AsSpan(p, qn)) && RoundTrips(answer, chunk.AsSpan(p + qn, an)))
            {
                return new QuerySpan(p, query, answer);
            }
        }

        return null;
    }

    private bool IsSentenceStart(int[] chunk, int p)
    {
        // Byte-level BPE attaches a word's leading space to the word, so "end. Next" is "end" "." " Next": a sentence
        // starts at a token beginning with a space and an upper-case letter right after a full stop, or at a token
        // right after ". " when the space stood alone. Three tokens of context cover ". " split over tokens.
        var before = _tokenizer.Decode(chunk.AsSpan(Math.Max(0, p - 3), Math.Min(p, 3)));
        var token = _tokenizer.Decode(chunk.AsSpan(p, 1));
        if (before.Length == 0 || token.Length == 0)
        {
            return false;
        }

        var last = before[^1];
        if (IsSentenceEnd(last) && token.Length > 1 && token[0] == ' ' && char.IsUpper(token[1]))
        {
            return true;
        }

        if (before.Length > 1 && last == ' ' && IsSentenceEnd(before[^2]) && !char.IsWhiteSpace(token[0]))
        {
            return true;
        }

        // A token that begins a line: after a newline (and the line's indentation), with text of its own.
        var trimmed = before.TrimEnd(' ', '\t');
        return trimmed.EndsWith('\n') && token.Trim().Length > 0 && !token.StartsWith('\n');
    }

    private static bool IsSentenceEnd(char c) => c is '.' or '?' or '!';

    private static bool IsClean(string text) => !text.Contains('\uFFFD', StringComparison.Ordinal) && !string.IsNullOrWhiteSpace(text);

    private bool RoundTrips(string text, ReadOnlySpan<int> tokens) => _tokenizer.Encode(text).AsSpan().SequenceEqual(tokens);

    private sealed record PickedChunk(int Document, int StartToken, int[] Tokens, string Text);

    private readonly record struct QuerySpan(int Start, string Query, string Answer);
}

/// <summary>A generated case with its provenance.</summary>
/// <param name="Case">The case as written to the file.</param>
/// <param name="Chunks">Where each chunk came from, in prompt order.</param>
/// <param name="SourceIndex">Index of the chunk the query and answer were taken from.</param>
/// <param name="QueryStart">Index of the query's first token inside the source chunk.</param>
internal sealed record GeneratedCase(FusionCase Case, IReadOnlyList<GeneratedChunk> Chunks, int SourceIndex, int QueryStart);

/// <summary>Where a chunk came from.</summary>
/// <param name="DocumentPath">The corpus document.</param>
/// <param name="StartToken">Index of its first token in the document's encoding.</param>
/// <param name="Tokens">Its tokens (the decoding of which is the chunk text).</param>
internal sealed record GeneratedChunk(string DocumentPath, int StartToken, int[] Tokens);

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a tiny generator whose sequence is fixed by its definition, so a seed
/// means the same cases in every .NET version and could be reproduced in another language.
/// </summary>
internal sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound): values from the incomplete last stretch of 2^64 are rejected, so there is no modulo bias.</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        var b = (ulong)bound;
        var excess = ((ulong.MaxValue % b) + 1) % b; // 2^64 mod b
        ulong r;
        do
        {
            r = NextUInt64();
        }
        while (excess != 0 && r > ulong.MaxValue - excess);
        return (int)(r % b);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(T[] items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
