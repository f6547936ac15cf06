using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.CacheGen;

namespace KvFusion.Cache.Container;

/// <summary>How the writer writes a container.</summary>
public sealed record KvContainerWriteOptions
{
    private readonly int _maxDegreeOfParallelism = Environment.ProcessorCount;

    /// <summary>The defaults: token ids included, one section encode per processor at a time.</summary>
    public static KvContainerWriteOptions Default { get; } = new();

    /// <summary>Whether the header carries the entry's token ids (a reader needs them to use a chunk by id).</summary>
    public bool IncludeTokenIds { get; init; } = true;

    /// <summary>The codec profiles (cachegen statistics per model and level) that writers code with, so that cachegen containers need not carry their statistics; none by default.</summary>
    public KvCodecProfiles Profiles { get; init; } = KvCodecProfiles.None;

    /// <summary>
    /// Replaces the quantization of cachegen levels, for measurements (null: each level's own). The container records
    /// it, so every reader decodes it; a profile is used only when it was built for the same quantization.
    /// </summary>
    public CacheGenTuning? CacheGenTuning { get; init; }

    /// <summary>Most sections encoded at once (1: one after another on the calling thread).</summary>
    public int MaxDegreeOfParallelism
    {
        get => _maxDegreeOfParallelism;
        init => _maxDegreeOfParallelism = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "MaxDegreeOfParallelism must be at least 1.");
    }
}

/// <summary>How the reader reads a container.</summary>
public sealed record KvContainerReadOptions
{
    private readonly int _maxDegreeOfParallelism = Environment.ProcessorCount;
    private readonly KvContainerLimits _limits = KvContainerLimits.Default;

    /// <summary>The defaults: <see cref="KvContainerLimits.Default"/>, one section decode per processor at a time.</summary>
    public static KvContainerReadOptions Default { get; } = new();

    /// <summary>The limits every length and count is checked against before anything is allocated.</summary>
    public KvContainerLimits Limits
    {
        get => _limits;
        init => _limits = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The codec profiles (cachegen statistics per model and level) that containers coded with a profile are decoded with; none by default.</summary>
    public KvCodecProfiles Profiles { get; init; } = KvCodecProfiles.None;

    /// <summary>Most sections decoded at once (1: one after another on the calling thread).</summary>
    public int MaxDegreeOfParallelism
    {
        get => _maxDegreeOfParallelism;
        init => _maxDegreeOfParallelism = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "MaxDegreeOfParallelism must be at least 1.");
    }
}

/// <summary>What writing a container wrote.</summary>
public sealed record KvContainerWriteResult
{
    /// <summary>All bytes of the container.</summary>
    public long TotalBytes { get; init; }

    /// <summary>Preamble, header and header checksum.</summary>
    public long HeaderBytes { get; init; }

    /// <summary>Section payloads.</summary>
    public long PayloadBytes { get; init; }

    /// <summary>Of the payloads, the bytes that are entropy statistics (the sum of each section's share).</summary>
    public long StatisticsBytes { get; init; }

    /// <summary>Section frames (index, kind, length, checksum).</summary>
    public long SectionFramingBytes { get; init; }

    /// <summary>Wall time of the section encodes.</summary>
    public TimeSpan EncodeTime { get; init; }
}

/// <summary>The result of a full verification: the header and where each section is.</summary>
public sealed record KvContainerInspection
{
    /// <summary>The header.</summary>
    public required KvContainerHeader Header { get; init; }

    /// <summary>Every section, in order.</summary>
    public required IReadOnlyList<KvContainerSectionInfo> Sections { get; init; }

    /// <summary>All bytes of the container.</summary>
    public long TotalBytes { get; init; }

    /// <summary>Preamble, header and header checksum.</summary>
    public long HeaderBytes { get; init; }
}

/// <summary>One section of a container.</summary>
/// <param name="Index">Its index (layer 0 K is 0, layer 0 V 1, …, then E-cache).</param>
/// <param name="Layer">The layer it belongs to.</param>
/// <param name="Kind">K, V or hidden states.</param>
/// <param name="Offset">Byte offset of its frame in the container.</param>
/// <param name="PayloadBytes">Payload length.</param>
/// <param name="Checksum">The payload's xxHash64.</param>
public sealed record KvContainerSectionInfo(int Index, int Layer, KvSectionKind Kind, long Offset, long PayloadBytes, ulong Checksum);
