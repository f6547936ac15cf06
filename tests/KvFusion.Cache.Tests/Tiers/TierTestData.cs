using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tests.Container;
using KvFusion.Cache.Tiers;

namespace KvFusion.Cache.Tests.Tiers;

/// <summary>Keys, namespaces and container blobs for the tier tests.</summary>
internal static class TierTestData
{
    public static readonly KvNamespace Alice = new("alice", ContainerTestData.Model);
    public static readonly KvNamespace Bob = new("bob", ContainerTestData.Model);

    public static TierKey Key(int i, KvNamespace? ns = null) =>
        new(ns ?? Alice, new CacheKey(CacheEntryKind.Chunk, i.ToString("x64", System.Globalization.CultureInfo.InvariantCulture), "sink:bos"));

    /// <summary>Opaque bytes of <paramref name="length"/> (weighed by the memory tier as cost = bytes).</summary>
    public static byte[] Bytes(int length, int seed = 1)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A real container (raw codec) for <paramref name="seed"/>'s entry, and the key it is stored under.</summary>
    public static (TierKey Key, byte[] Blob) ContainerBlob(int seed, int tokens = 16, KvCodecSpec? codec = null, KvNamespace? ns = null)
    {
        var entry = ContainerTestData.Entry(layers: 2, heads: 2, tokens: tokens, headDim: 16, seed: seed);
        return (new TierKey(ns ?? Alice, entry.Key), KvContainerWriter.ToArray(entry, codec ?? KvCodecSpec.Raw));
    }
}
