namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>
/// Finds the chunks to inject for a question: each chunk's exact text and, when known, its KvFusion chunk id (64 hex
/// characters). An empty list injects nothing.
/// </summary>
/// <param name="question">The text of the last user message.</param>
/// <param name="cancellationToken">Cancels the search.</param>
public delegate Task<IReadOnlyList<(string Text, string? ChunkId)>> KvFusionChunkRetriever(string question, CancellationToken cancellationToken);
