namespace KvFusion.Cache.Codecs;

/// <summary>The shape of a whole entry, which is what codec parameters (such as bins per layer) derive from.</summary>
/// <param name="LayerCount">Layers.</param>
/// <param name="KvHeads">KV heads.</param>
/// <param name="HeadDim">Head dimension.</param>
/// <param name="TokenCount">Tokens.</param>
public readonly record struct KvEntryShape(int LayerCount, int KvHeads, int HeadDim, int TokenCount)
{
    /// <summary>The shape of layer <paramref name="layer"/>'s K or V section.</summary>
    public KvSectionShape Section(int layer, KvSectionKind kind) => new(layer, kind, KvHeads, TokenCount, HeadDim);
}
