using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Loading;

/// <summary>Predicted costs the <see cref="LoadController"/> plans with; null where nothing was measured yet.</summary>
public interface ILoadCosts
{
    /// <summary>Seconds to read a blob of <paramref name="bytes"/> from <paramref name="tier"/>.</summary>
    double? TransferSeconds(string tier, long bytes);

    /// <summary>Seconds to decode KV of <paramref name="fp16Bytes"/> (its fp16 size) stored with <paramref name="codec"/>.</summary>
    double? DecodeSeconds(KvCodecSpec codec, long fp16Bytes);

    /// <summary>Seconds the fusion's own pass takes for <paramref name="tokenLayers"/> token-layers (blend's recomputed rows and the query).</summary>
    double? RecomputeSeconds(double tokenLayers);

    /// <summary>Seconds to compute a chunk alone from its tokens, for <paramref name="tokenLayers"/> token-layers (a chunk loaded as text).</summary>
    double? PrefillSeconds(double tokenLayers);
}
