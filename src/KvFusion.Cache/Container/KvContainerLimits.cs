namespace KvFusion.Cache.Container;

/// <summary>
/// Hard limits the reader checks every length and count against before it allocates anything. Each value must be
/// positive and at most the format's own ceiling (an array's length for byte counts held in memory).
/// </summary>
public sealed record KvContainerLimits
{
    private readonly int _maxHeaderBytes = 16 << 20;
    private readonly int _maxTokens = 1 << 20;
    private readonly int _maxLayers = 1024;
    private readonly int _maxKvHeads = 1024;
    private readonly int _maxHeadDim = 1024;
    private readonly int _maxHiddenSize = 65536;
    private readonly long _maxSectionBytes = 1L << 30;
    private readonly long _maxTotalBytes = 64L << 30;

    /// <summary>The defaults: 16 MiB header, 2^20 tokens, 1024 layers, KV heads and head dim, hidden size 65536,
    /// 1 GiB per section, 64 GiB in all.</summary>
    public static KvContainerLimits Default { get; } = new();

    /// <summary>Largest header (the bytes between the preamble and the header checksum).</summary>
    public int MaxHeaderBytes { get => _maxHeaderBytes; init => _maxHeaderBytes = Positive(value, Array.MaxLength - 64); }

    /// <summary>Most tokens in one entry.</summary>
    public int MaxTokens { get => _maxTokens; init => _maxTokens = Positive(value, int.MaxValue); }

    /// <summary>Most layers.</summary>
    public int MaxLayers { get => _maxLayers; init => _maxLayers = Positive(value, int.MaxValue / 2); }

    /// <summary>Most KV heads.</summary>
    public int MaxKvHeads { get => _maxKvHeads; init => _maxKvHeads = Positive(value, int.MaxValue); }

    /// <summary>Largest head dimension.</summary>
    public int MaxHeadDim { get => _maxHeadDim; init => _maxHeadDim = Positive(value, int.MaxValue); }

    /// <summary>Largest hidden size of E-cache sections.</summary>
    public int MaxHiddenSize { get => _maxHiddenSize; init => _maxHiddenSize = Positive(value, int.MaxValue); }

    /// <summary>Largest section payload.</summary>
    public long MaxSectionBytes { get => _maxSectionBytes; init => _maxSectionBytes = Positive(value, Array.MaxLength); }

    /// <summary>Most bytes in all: both the container's length and the decoded values' bytes.</summary>
    public long MaxTotalBytes { get => _maxTotalBytes; init => _maxTotalBytes = Positive(value, long.MaxValue); }

    private static int Positive(int value, int max) => value >= 1 && value <= max
        ? value
        : throw new ArgumentOutOfRangeException(nameof(value), value, $"A container limit must be 1..{max}.");

    private static long Positive(long value, long max) => value >= 1 && value <= max
        ? value
        : throw new ArgumentOutOfRangeException(nameof(value), value, $"A container limit must be 1..{max}.");
}
