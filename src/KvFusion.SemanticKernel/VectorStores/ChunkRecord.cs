using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>One retrievable chunk: its KvFusion chunk id, the document it came from, its text and its embedding.</summary>
public sealed class ChunkRecord
{
    /// <summary>The chunk's id (hex), the key under which the fusion engine stores its KV cache.</summary>
    [VectorStoreKey]
    public string Id { get; set; } = string.Empty;

    /// <summary>The source document's name; indexed so filters can select one document.</summary>
    [VectorStoreData(IsIndexed = true)]
    public string Document { get; set; } = string.Empty;

    /// <summary>The chunk's text.</summary>
    [VectorStoreData]
    public string Text { get; set; } = string.Empty;

    /// <summary>The text's embedding (all-MiniLM-L6-v2, 384 dimensions), compared by cosine similarity.</summary>
    [VectorStoreVector(384, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}
