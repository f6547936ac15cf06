using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Container;

/// <summary>What a reader requires of a container: the model and tokenizer that computed it and the KV shape.</summary>
/// <param name="ModelFingerprint">The model fingerprint (compared ordinally).</param>
/// <param name="TokenizerFingerprint">The tokenizer fingerprint (compared ordinally).</param>
/// <param name="LayerCount">Layers.</param>
/// <param name="KvHeads">KV heads.</param>
/// <param name="HeadDim">Head dimension.</param>
public sealed record KvContainerExpectation(string ModelFingerprint, string TokenizerFingerprint, int LayerCount, int KvHeads, int HeadDim)
{
    /// <summary>What a container must hold to be used by <paramref name="model"/>.</summary>
    public static KvContainerExpectation FromModel(TransformerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = model.Config;
        return new(model.Fingerprint.Model, model.Fingerprint.Tokenizer, c.LayerCount, c.KvHeadCount, c.HeadDim);
    }
}
