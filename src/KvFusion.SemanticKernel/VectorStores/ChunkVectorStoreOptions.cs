using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>Settings of <see cref="ChunkVectorStore"/>.</summary>
public sealed class ChunkVectorStoreOptions
{
    /// <summary>
    /// Embeds search text and vector properties whose values are not vectors (for example a <see cref="string"/>), for
    /// collections whose definition or property names no generator of its own. Null: searches need vectors.
    /// </summary>
    public IEmbeddingGenerator? EmbeddingGenerator { get; set; }

    /// <summary>Logs opening, loading and failures; null for none.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Whether every write waits for RocksDB's log to reach the disk (slower, survives a power loss); false by default.</summary>
    public bool SyncWrites { get; set; }
}
