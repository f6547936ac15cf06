namespace KvFusion.Cache.Fusion;

/// <summary>Settings of a <see cref="FusionEngine"/>.</summary>
public sealed record FusionEngineOptions
{
    /// <summary>
    /// The sink chunks are precomputed behind when a request names none. BOS measured best on tiny-pydocs (see
    /// docs/measurements.md).
    /// </summary>
    public SinkKind DefaultSink { get; init; } = SinkKind.Bos;

    /// <summary>Store the KV of full 256-token prefix blocks computed by a request, for later exact prefix reuse.</summary>
    public bool StorePrefixBlocks { get; init; } = true;
}
