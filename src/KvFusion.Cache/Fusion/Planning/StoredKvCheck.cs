using KvFusion.Cache.Chunks;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>Refuses stored KV that another model or tokenizer computed, or that has other shapes.</summary>
internal static class StoredKvCheck
{
    /// <exception cref="FusionException">The entry does not belong to <paramref name="model"/>.</exception>
    public static void Check(TransformerModel model, CachedKv entry, string what)
    {
        if (entry.ModelFingerprint != model.Fingerprint.Model || entry.TokenizerFingerprint != model.Fingerprint.Tokenizer)
        {
            throw new FusionException(FusionError.ModelMismatch,
                $"{what} was computed by model {entry.ModelFingerprint[..12]}… (tokenizer {entry.TokenizerFingerprint[..12]}…), not by this model ({model.Fingerprint.Model[..12]}…).");
        }

        var c = model.Config;
        if (entry.LayerCount != c.LayerCount || entry.KvHeads != c.KvHeadCount || entry.HeadDim != c.HeadDim)
        {
            throw new FusionException(FusionError.ModelMismatch, $"{what} has {entry.LayerCount}×{entry.KvHeads}×{entry.HeadDim} KV; the model needs {c.LayerCount}×{c.KvHeadCount}×{c.HeadDim}.");
        }
    }
}
