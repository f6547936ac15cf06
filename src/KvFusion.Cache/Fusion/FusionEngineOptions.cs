namespace KvFusion.Cache.Fusion;

/// <summary>Settings of a <see cref="FusionEngine"/>.</summary>
public sealed record FusionEngineOptions
{
    /// <summary>
    /// The sink chunks are precomputed behind when a request names none. BOS measured best on tiny-pydocs (see
    /// docs/measurements.md).
    /// </summary>
    public SinkKind DefaultSink { get; init; } = SinkKind.Bos;

    /// <summary>
    /// Layers whose entering hidden state (E-cache) is stored with every chunk this engine precomputes, so receivers
    /// of its family can share the chunk recomputing ranges that start there (<see cref="Sharing.RecomputeRanges.HiddenStateLayers"/>
    /// of their profile). Empty: none stored. Each layer adds tokens × hidden × 2 bytes to an entry.
    /// </summary>
    public IReadOnlyList<int> HiddenStateLayers { get; init; } = [];

    /// <summary>Store the KV of full 256-token prefix blocks computed by a request, for later exact prefix reuse.</summary>
    public bool StorePrefixBlocks { get; init; } = true;
}
