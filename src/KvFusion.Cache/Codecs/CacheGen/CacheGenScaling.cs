namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>What a quantization scale covers. The numeric values are written in containers: never renumber.</summary>
internal enum CacheGenScaling : byte
{
    /// <summary>One max-abs scale per token over all of the section's channels (CacheGen's choice).</summary>
    PerToken = 0,

    /// <summary>One max-abs scale per channel over the section's tokens (KIVI's choice for K).</summary>
    PerChannel = 1,
}
