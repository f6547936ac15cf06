namespace KvFusion.Client.Contracts;

/// <summary>Body of <c>POST /v1/documents</c>: a document to chunk and precompute.</summary>
public sealed record CreateDocumentRequest
{
    /// <summary>The document's text.</summary>
    public string Text { get; init; } = "";

    /// <summary>A name to keep with the document (optional).</summary>
    public string? Name { get; init; }

    /// <summary>Tokens per chunk (default 256).</summary>
    public int? ChunkTokens { get; init; }

    /// <summary>Tokens each chunk repeats from the end of the one before (default 0).</summary>
    public int? OverlapTokens { get; init; }

    /// <summary>Answer with server-sent events: <c>progress</c> events while chunks are computed, then <c>document</c>.</summary>
    public bool Stream { get; init; }

    /// <summary>The served model (agent) that chunks, computes and stores it; null for the service's default model.</summary>
    public string? Model { get; init; }
}

/// <summary>A stored document: its chunks, in order.</summary>
public sealed record DocumentInfo
{
    /// <summary>The document id: 64 lowercase hex digits over the model and its chunk ids.</summary>
    public required string Id { get; init; }

    /// <summary>The name given when it was created.</summary>
    public string? Name { get; init; }

    /// <summary>Tokens in the document's chunks (overlaps counted once per chunk).</summary>
    public required int Tokens { get; init; }

    /// <summary>The chunks, in document order.</summary>
    public required IReadOnlyList<ChunkInfo> Chunks { get; init; }
}

/// <summary>A <c>progress</c> event of a streamed document: chunks done out of the total.</summary>
public sealed record DocumentProgress
{
    /// <summary>Chunks stored so far.</summary>
    public required int Done { get; init; }

    /// <summary>Chunks in the document.</summary>
    public required int Total { get; init; }

    /// <summary>Chunks computed so far (the rest were already stored).</summary>
    public required int Computed { get; init; }
}
