namespace KvFusion.SemanticKernel.Embeddings;

/// <summary>Settings of <see cref="KvFusionEmbeddingGenerator"/>.</summary>
public sealed class KvFusionEmbeddingGeneratorOptions
{
    /// <summary>The largest batch size accepted by <see cref="BatchSize"/>.</summary>
    public const int MaxBatchSize = 1024;

    /// <summary>How many texts go through the model in one call (1 to <see cref="MaxBatchSize"/>); 32 by default.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (BatchSize is < 1 or > MaxBatchSize)
        {
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize,
                $"KvFusionEmbeddingGeneratorOptions.BatchSize must be between 1 and {MaxBatchSize}.");
        }
    }
}
