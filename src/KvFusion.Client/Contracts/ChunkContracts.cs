namespace KvFusion.Client.Contracts;

/// <summary>One chunk to precompute: its text, or its token ids under the service's model.</summary>
public sealed record ChunkSource
{
    /// <summary>The chunk's text (tokenized by the service's model).</summary>
    public string? Text { get; init; }

    /// <summary>The chunk's token ids (instead of text).</summary>
    public IReadOnlyList<int>? Tokens { get; init; }
}

/// <summary>Body of <c>POST /v1/chunks</c>: chunks to precompute and store.</summary>
public sealed record CreateChunksRequest
{
    /// <summary>The chunks, each text or token ids.</summary>
    public IReadOnlyList<ChunkSource> Chunks { get; init; } = [];

    /// <summary>Keep the chunks in host memory, never evicted, for this many seconds (optional).</summary>
    public int? PinSeconds { get; init; }

    /// <summary>The served model (agent) that computes and stores them; null for the service's default model.</summary>
    public string? Model { get; init; }
}

/// <summary>Answer of <c>POST /v1/chunks</c>.</summary>
public sealed record CreateChunksResponse
{
    /// <summary>The stored chunks, in request order.</summary>
    public IReadOnlyList<ChunkInfo> Chunks { get; init; } = [];
}

/// <summary>What the service holds for one chunk.</summary>
public sealed record ChunkInfo
{
    /// <summary>The chunk id: 64 lowercase hex digits, the same in every process and language.</summary>
    public required string Id { get; init; }

    /// <summary>Tokens in the chunk.</summary>
    public required int Tokens { get; init; }

    /// <summary>Bytes of the stored container.</summary>
    public required long Bytes { get; init; }

    /// <summary>The codec the stored container is encoded with (<c>raw</c>, <c>lz4</c>, <c>fp8</c>, <c>cachegen:N</c>).</summary>
    public required string Codec { get; init; }

    /// <summary>The model the cache belongs to.</summary>
    public required string Model { get; init; }

    /// <summary>Whether this request computed (or uploaded) it; false when it was already stored.</summary>
    public bool Created { get; init; }

    /// <summary>Until when the chunk is pinned in host memory, if it is.</summary>
    public DateTimeOffset? PinnedUntil { get; init; }
}

/// <summary>Body of <c>POST /v1/chunks/{id}/pin</c>.</summary>
public sealed record PinChunkRequest
{
    /// <summary>How long the chunk stays pinned in host memory, in seconds.</summary>
    public int TtlSeconds { get; init; } = 600;
}
