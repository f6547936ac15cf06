using System.Buffers.Binary;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>Where a cachegen container's entropy statistics come from. Written in containers: never renumber.</summary>
internal enum CacheGenStatistics : byte
{
    /// <summary>Each section carries two bytes per channel: the parameters of a two-sided geometric model.</summary>
    Inline = 0,

    /// <summary>Per-(layer, K/V, channel) tables of a model profile named by its id; nothing in the sections.</summary>
    Profile = 1,
}

/// <summary>
/// Everything a cachegen decoder needs besides the sections: the quantization levels of every layer's K and V, the
/// scaling, and where the statistics come from. Derived from the level and the model's layer count, never from tables
/// keyed by a model's name; written into the container header.
/// </summary>
/// <remarks>
/// Layout (little-endian): u8 parameters version (1), u8 K scaling, u8 V scaling, u8 statistics source,
/// [32 bytes profile id when the source is a profile], u16 layer count L, L bytes of K levels, L bytes of V levels.
/// A level B quantizes to the 2B + 1 symbols of q in [-B, B].
/// </remarks>
internal sealed record CacheGenParameters
{
    public const byte FormatVersion = 1;

    /// <summary>The largest level: 2B + 1 symbols must fit the coder's byte alphabet.</summary>
    public const int MaxLevels = 127;

    public const int ProfileIdLength = 32;

    public required int Level { get; init; }

    public required CacheGenScaling KeyScaling { get; init; }

    public required CacheGenScaling ValueScaling { get; init; }

    public required CacheGenStatistics Statistics { get; init; }

    /// <summary>The profile's id when <see cref="Statistics"/> is <see cref="CacheGenStatistics.Profile"/>, else empty.</summary>
    public required ReadOnlyMemory<byte> ProfileId { get; init; }

    public required byte[] KeyLevels { get; init; }

    public required byte[] ValueLevels { get; init; }

    public int LayerCount => KeyLevels.Length;

    public int Levels(int layer, KvSectionKind kind) => kind == KvSectionKind.Keys ? KeyLevels[layer] : ValueLevels[layer];

    /// <summary>
    /// The levels of a quality level for a model of <paramref name="layerCount"/> layers, as measured on tiny-pydocs
    /// (docs/decisions.md): K gets more levels than V. The layer groups of CacheGen (the first third for K, the first
    /// sixteenth for V, at least one layer) are kept in the format; the measured levels are the same in both groups.
    /// </summary>
    public static CacheGenParameters ForLevel(int level, int layerCount)
    {
        var (kEarly, kLate, vEarly, vLate) = level switch
        {
            // Measured on tiny-pydocs (docs/decisions.md, bench codec --variants): K is the sensitive half (K16/V4
            // fuses as well as fp16, K8/V6 does not); giving only the first layers more levels measured worse than
            // the same levels everywhere, so the groups hold equal levels for now.
            1 => (16, 16, 4, 4),
            2 => (8, 8, 3, 3),
            // The smallest level: at about 1.1-1.3 bits per value V tolerates 3 symbols better than K tolerates 5.
            3 => (3, 3, 1, 1),
            _ => throw new ArgumentOutOfRangeException(nameof(level), level, $"cachegen levels are 1..{KvCodecSpec.MaxCacheGenLevel}."),
        };
        ArgumentOutOfRangeException.ThrowIfLessThan(layerCount, 1);
        var keyEarlyLayers = KeyEarlyLayers(layerCount);
        var valueEarlyLayers = Math.Max(1, layerCount / 16);
        var keys = new byte[layerCount];
        var values = new byte[layerCount];
        for (var l = 0; l < layerCount; l++)
        {
            keys[l] = (byte)(l < keyEarlyLayers ? kEarly : kLate);
            values[l] = (byte)(l < valueEarlyLayers ? vEarly : vLate);
        }

        return new CacheGenParameters
        {
            Level = level,
            KeyScaling = CacheGenScaling.PerToken,
            ValueScaling = CacheGenScaling.PerToken,
            Statistics = CacheGenStatistics.Inline,
            ProfileId = ReadOnlyMemory<byte>.Empty,
            KeyLevels = keys,
            ValueLevels = values,
        };
    }

    /// <summary>CacheGen's early K group: the first third of the layers, at least one.</summary>
    public static int KeyEarlyLayers(int layerCount) => Math.Max(1, (layerCount + 2) / 3);

    public int Length => 4 + (Statistics == CacheGenStatistics.Profile ? ProfileIdLength : 0) + 2 + (2 * LayerCount);

    public void Write(Span<byte> destination)
    {
        destination[0] = FormatVersion;
        destination[1] = (byte)KeyScaling;
        destination[2] = (byte)ValueScaling;
        destination[3] = (byte)Statistics;
        var p = 4;
        if (Statistics == CacheGenStatistics.Profile)
        {
            ProfileId.Span.CopyTo(destination.Slice(p, ProfileIdLength));
            p += ProfileIdLength;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(p), (ushort)LayerCount);
        p += 2;
        KeyLevels.CopyTo(destination.Slice(p));
        ValueLevels.CopyTo(destination.Slice(p + LayerCount));
    }

    /// <summary>Reads parameters written by <see cref="Write"/> for a container of <paramref name="layerCount"/> layers.</summary>
    /// <exception cref="KvCodecException">The bytes are not valid cachegen parameters for that many layers.</exception>
    public static CacheGenParameters Read(ReadOnlySpan<byte> source, int level, int layerCount)
    {
        if (source.Length < 6)
            throw new KvCodecException($"The cachegen parameters are {source.Length} bytes; at least 6 are needed.");
        if (source[0] != FormatVersion)
            throw new KvCodecException($"The cachegen parameters have version {source[0]}; this build reads version {FormatVersion}.");
        var keyScaling = ReadScaling(source[1], "K");
        var valueScaling = ReadScaling(source[2], "V");
        if (source[3] > (byte)CacheGenStatistics.Profile)
            throw new KvCodecException($"The cachegen statistics source is {source[3]}; 0 (inline) and 1 (profile) exist.");
        var statistics = (CacheGenStatistics)source[3];
        var p = 4;
        var profileId = ReadOnlyMemory<byte>.Empty;
        if (statistics == CacheGenStatistics.Profile)
        {
            if (source.Length < p + ProfileIdLength + 2)
                throw new KvCodecException("The cachegen parameters end inside the profile id.");
            profileId = source.Slice(p, ProfileIdLength).ToArray();
            p += ProfileIdLength;
        }

        var layers = BinaryPrimitives.ReadUInt16LittleEndian(source.Slice(p));
        p += 2;
        if (layers != layerCount)
            throw new KvCodecException($"The cachegen parameters describe {layers} layers; the container has {layerCount}.");
        if (source.Length != p + (2 * layers))
            throw new KvCodecException($"The cachegen parameters are {source.Length} bytes; {layers} layers need {p + (2 * layers)}.");
        var keys = source.Slice(p, layers).ToArray();
        var values = source.Slice(p + layers, layers).ToArray();
        for (var l = 0; l < layers; l++)
        {
            if (keys[l] is 0 or > MaxLevels || values[l] is 0 or > MaxLevels)
                throw new KvCodecException($"Layer {l} has cachegen levels K {keys[l]}, V {values[l]}; each must be 1..{MaxLevels}.");
        }

        return new CacheGenParameters
        {
            Level = level,
            KeyScaling = keyScaling,
            ValueScaling = valueScaling,
            Statistics = statistics,
            ProfileId = profileId,
            KeyLevels = keys,
            ValueLevels = values,
        };
    }

    /// <summary>The same quantization with statistics from a profile.</summary>
    public CacheGenParameters WithProfile(ReadOnlyMemory<byte> profileId) =>
        this with { Statistics = CacheGenStatistics.Profile, ProfileId = profileId };

    /// <summary>Whether two parameter sets quantize identically (what a profile must match).</summary>
    public bool SameQuantization(CacheGenParameters other) =>
        KeyScaling == other.KeyScaling && ValueScaling == other.ValueScaling &&
        KeyLevels.AsSpan().SequenceEqual(other.KeyLevels) && ValueLevels.AsSpan().SequenceEqual(other.ValueLevels);

    private static CacheGenScaling ReadScaling(byte value, string what) =>
        value <= (byte)CacheGenScaling.PerChannel
            ? (CacheGenScaling)value
            : throw new KvCodecException($"The cachegen {what} scaling is {value}; 0 (per token) and 1 (per channel) exist.");
}
