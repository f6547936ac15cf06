using KvFusion.Cache.Codecs;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Container;

/// <summary>A container's header: what the entry is, its shape, its codec and what else it carries.</summary>
public sealed record KvContainerHeader
{
    /// <summary>The container format version.</summary>
    public int FormatVersion { get; init; } = KvContainerFormat.Version;

    /// <summary>The entry's key (kind, id, precompute variant).</summary>
    public required CacheKey Key { get; init; }

    /// <summary>Fingerprint of the model that computed the entry.</summary>
    public required string ModelFingerprint { get; init; }

    /// <summary>Fingerprint of the tokenizer.</summary>
    public required string TokenizerFingerprint { get; init; }

    /// <summary>Tokens.</summary>
    public required int TokenCount { get; init; }

    /// <summary>Layers.</summary>
    public required int LayerCount { get; init; }

    /// <summary>KV heads.</summary>
    public required int KvHeads { get; init; }

    /// <summary>Head dimension.</summary>
    public required int HeadDim { get; init; }

    /// <summary>The codec of every section.</summary>
    public required KvCodecSpec Codec { get; init; }

    /// <summary>The codec's parameters, as its encoder wrote them (empty for raw).</summary>
    public ReadOnlyMemory<byte> CodecParameters { get; init; }

    /// <summary>The token ids, or null when the container does not carry them.</summary>
    public IReadOnlyList<int>? TokenIds { get; init; }

    /// <summary>The layers whose entering hidden states (E-cache) follow the K/V sections, strictly increasing; empty when none.</summary>
    public IReadOnlyList<int> HiddenStateLayers { get; init; } = [];

    /// <summary>Width of the E-cache sections; 0 when there are none.</summary>
    public int HiddenSize { get; init; }

    /// <summary>The entry's shape.</summary>
    public KvEntryShape Shape => new(LayerCount, KvHeads, HeadDim, TokenCount);

    /// <summary>Sections: K and V of every layer, then one per E-cache layer.</summary>
    public int SectionCount => (2 * LayerCount) + HiddenStateLayers.Count;

    /// <summary>The shape of section <paramref name="index"/> (layer 0 K, layer 0 V, layer 1 K, …, then E-cache).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not a section of this container.</exception>
    public KvSectionShape SectionShape(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, SectionCount);
        return index < 2 * LayerCount
            ? Shape.Section(index / 2, (index & 1) == 0 ? KvSectionKind.Keys : KvSectionKind.Values)
            : new KvSectionShape(HiddenStateLayers[index - (2 * LayerCount)], KvSectionKind.HiddenStates, 1, TokenCount, HiddenSize);
    }
}
