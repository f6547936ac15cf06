using KvFusion.Cache.Keys;
using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Fusion;

/// <summary>What chunks are precomputed behind (and dropped afterwards), so their first tokens do not act as an attention sink.</summary>
public enum SinkKind
{
    /// <summary>Chunks are computed alone.</summary>
    None,

    /// <summary>Behind the model's BOS token.</summary>
    Bos,

    /// <summary>Behind the request's prefix (system prompt); the same as None when there is no prefix.</summary>
    Prefix,
}

/// <summary>A chunk of a fusion request: a stored chunk by id, or text (or tokens) to precompute and store on the way.</summary>
public sealed record ChunkInput
{
    /// <summary>A stored chunk's id.</summary>
    public ChunkId? Id { get; init; }

    /// <summary>Chunk text.</summary>
    public string? Text { get; init; }

    /// <summary>Chunk token ids (instead of text).</summary>
    public IReadOnlyList<int>? Tokens { get; init; }

    /// <summary>A stored chunk.</summary>
    public static ChunkInput FromId(ChunkId id) => new() { Id = id };

    /// <summary>Text to precompute (or find) as a chunk.</summary>
    public static ChunkInput FromText(string text) => new() { Text = text };

    /// <summary>Tokens to precompute (or find) as a chunk.</summary>
    public static ChunkInput FromTokens(IReadOnlyList<int> tokens) => new() { Tokens = tokens };
}

/// <summary>A prompt made of an optional prefix, chunks and a query, and how to compute it.</summary>
public sealed record FusionRequest
{
    /// <summary>Optional prefix (system prompt), always computed or reused exactly.</summary>
    public string? Prefix { get; init; }

    /// <summary>The chunks, in prompt order.</summary>
    public IReadOnlyList<ChunkInput> Chunks { get; init; } = [];

    /// <summary>The query text (must not be empty).</summary>
    public string? Query { get; init; }

    /// <summary>The query as token ids (instead of text).</summary>
    public IReadOnlyList<int>? QueryTokens { get; init; }

    /// <summary>The mode.</summary>
    public FusionMode Mode { get; init; } = FusionMode.Blend;

    /// <summary>Blend settings.</summary>
    public BlendOptions Blend { get; init; } = BlendOptions.Default();

    /// <summary>The sink chunks are precomputed behind; null: the engine's default.</summary>
    public SinkKind? Sink { get; init; }

    /// <summary>
    /// <see cref="FusionMode.Share"/>: the sender whose stored caches the chunks are (chunk ids and texts are looked up
    /// under its fingerprints, in its store) and the layers to recompute. Required in that mode, refused in others.
    /// </summary>
    public SharedCacheSource? SharedFrom { get; init; }

    /// <summary>Extra slots to reserve after the prompt for generation.</summary>
    public int ReserveTokens { get; init; } = 256;

    /// <summary>
    /// A TTFT deadline or quality budget for loading (needs <see cref="FusionEngineOptions.Loading"/>): each chunk sent
    /// as text is read at the stored level, or computed from its text, that the loading controller picks; null reads
    /// every chunk's own entry.
    /// </summary>
    public Loading.LoadGoal? Loading { get; init; }
}
