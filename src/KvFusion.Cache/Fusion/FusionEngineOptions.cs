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
    /// of their profile), and blend starts chunk tokens from it (<see cref="BlendOptions.StartFromHiddenStates"/>, on in
    /// the default blend, which needs layer 1). Each layer adds tokens × hidden × 2 bytes to an entry (about 6% of a
    /// 32-layer GQA model's K/V, 17% of tiny-pydocs'). Empty: none stored, and blend recomputes the layers below its
    /// first check layer.
    /// </summary>
    public IReadOnlyList<int> HiddenStateLayers { get; init; } = DefaultHiddenStateLayers;

    /// <summary>The E-cache layers stored by default: layer 1, where the default blend starts chunk tokens.</summary>
    public static IReadOnlyList<int> DefaultHiddenStateLayers { get; } = [1];

    /// <summary>
    /// Maps blend's quality signal to an estimated KL for this engine's model (<c>kvfusion eval fusion --calibrate</c>
    /// fits one). The default was fitted on tiny-pydocs (docs/decisions.md, "Quality gate").
    /// </summary>
    public QualityCalibration QualityCalibration { get; init; } = DefaultQualityCalibration;

    /// <summary>
    /// The calibration fitted on tiny-pydocs: 144 points (tests/data/fusion-cases-tiny-seed11.jsonl, 24 cases, at
    /// blend 0.15, 0.3 and 0.6, plain and from the E-cache), kept in tests/data/quality-calibration-tiny.json.
    /// </summary>
    public static QualityCalibration DefaultQualityCalibration { get; } = new(0.2657205231332738, 0.8212524409354448);

    /// <summary>
    /// Continuous batching of generations: the decode steps of every running generation of the engine (and of the
    /// engines made from it by <see cref="FusionEngine.WithStore"/>) share one forward pass. Null: each generation
    /// decodes alone, taking turns step by step in the compute queue.
    /// </summary>
    public Scheduling.BatchingOptions? Batching { get; init; } = new();

    /// <summary>
    /// Bytes of working KV cache the sessions of this engine (and of the engines made from it by
    /// <see cref="FusionEngine.WithStore"/>) may hold together; a fusion that does not fit waits for memory, up to
    /// <see cref="KvMemoryWait"/>. Null: no bound.
    /// </summary>
    public long? MaxSessionKvBytes { get; init; }

    /// <summary>How long a fusion waits for KV memory before it is refused with <see cref="Scheduling.KvMemoryFullException"/>.</summary>
    public TimeSpan KvMemoryWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Store the KV of full 256-token prefix blocks computed by a request, for later exact prefix reuse.</summary>
    public bool StorePrefixBlocks { get; init; } = true;

    /// <summary>
    /// Where each fusion's compute time is recorded against the token-layers it computed, for the loading controller;
    /// null: nowhere. With batching, the time includes waiting for the steps of other requests, which is what a
    /// request's recompute costs under the current load.
    /// </summary>
    public Loading.LoadCostModel? CostModel { get; init; }

    /// <summary>
    /// Tokens of chunk ids an engine remembers (about 4 bytes each), so a chunk named by id can be planned before its
    /// KV is read and loaded at the level the controller picks; chunks it does not know are read whole first.
    /// </summary>
    public long ChunkTokenCatalogTokens { get; init; } = 4_000_000;

    /// <summary>The levels and tier the loading controller chooses from for requests with a loading goal (needs <see cref="CostModel"/>); null: no controller.</summary>
    public Loading.LoadingOptions? Loading { get; init; }
}
