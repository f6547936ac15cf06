namespace KvFusion.Cache.Codecs;

/// <summary>The codecs a KV container can use. The numeric values are written in containers: never renumber.</summary>
public enum KvCodecKind : byte
{
    /// <summary>fp16 values as they are (little-endian).</summary>
    Raw = 0,

    /// <summary>Lossless: fp16 split into byte planes, then LZ4.</summary>
    Lz4 = 1,

    /// <summary>Lossy: fp8 e4m3 with one scale per token.</summary>
    Fp8 = 2,

    /// <summary>Lossy: CacheGen-style quantization with bins by layer group, then rANS entropy coding.</summary>
    CacheGen = 3,
}
