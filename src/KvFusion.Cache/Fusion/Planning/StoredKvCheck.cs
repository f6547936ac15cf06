using KvFusion.Cache.Chunks;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>Refuses stored KV that another model or tokenizer computed, or that has other shapes.</summary>
internal static class StoredKvCheck
{
    /// <exception cref="FusionException">The entry does not belong to <paramref name="model"/>.</exception>
    public static void Check(TransformerModel model, CachedKv entry, string what) => Check(model.Fingerprint, model.Config, entry, what, "this model");

    /// <exception cref="FusionException">The entry was not computed by the model of <paramref name="fingerprint"/> and <paramref name="config"/>.</exception>
    public static void Check(ModelFingerprint fingerprint, ModelConfig config, CachedKv entry, string what, string modelName)
    {
        if (entry.ModelFingerprint != fingerprint.Model || entry.TokenizerFingerprint != fingerprint.Tokenizer)
        {
            throw new FusionException(FusionError.ModelMismatch,
                $"{what} was computed by model {entry.ModelFingerprint[..12]}… (tokenizer {entry.TokenizerFingerprint[..12]}…), not by {modelName} ({fingerprint.Model[..12]}…).");
        }

        if (entry.LayerCount != config.LayerCount || entry.KvHeads != config.KvHeadCount || entry.HeadDim != config.HeadDim)
        {
            throw new FusionException(FusionError.ModelMismatch, $"{what} has {entry.LayerCount}×{entry.KvHeads}×{entry.HeadDim} KV; {modelName} needs {config.LayerCount}×{config.KvHeadCount}×{config.HeadDim}.");
        }
    }
}
