using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;

namespace KvFusion.TestSupport;

/// <summary>
/// Synthetic KV entries for tests that need real containers but no model: fixed fingerprints, token ids and fp16
/// values drawn from a seed, so the same seed gives the same entry in every test project.
/// </summary>
public static class KvTestEntries
{
    /// <summary>The model fingerprint the entries claim.</summary>
    public const string Model = "946484eb195bda404a4661999618030d7146ec263a962b584cd4ec38b205323f";

    /// <summary>The tokenizer fingerprint the entries claim.</summary>
    public const string Tokenizer = "905ec451befb6560e7f841540178d2f6fd6aab8276f26ffa3429ebd2e599f20b";

    /// <summary>
    /// An entry of uniform random fp16 in [-<paramref name="amplitude"/>, <paramref name="amplitude"/>) with random
    /// token ids; its key is <paramref name="key"/>, or the chunk id of its tokens under <see cref="Model"/>.
    /// </summary>
    public static CachedKv Random(int seed, int tokens = 32, int layers = 2, int heads = 2, int headDim = 16, string model = Model, CacheKey? key = null, float amplitude = 1)
    {
        var rng = new Random(seed);
        var ids = new int[tokens];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = rng.Next(0, 50_000);
        }

        var n = layers * heads * tokens * headDim;
        var keys = new Half[n];
        var values = new Half[n];
        for (var i = 0; i < n; i++)
        {
            keys[i] = (Half)(((rng.NextSingle() * 2) - 1) * amplitude);
            values[i] = (Half)(((rng.NextSingle() * 2) - 1) * amplitude);
        }

        var chunk = key ?? new CacheKey(CacheEntryKind.Chunk, ChunkId.Compute(Model, Tokenizer, ids).ToString(), "sink:bos");
        return new CachedKv(chunk, model, Tokenizer, ids, layers, heads, headDim, keys, values);
    }

    /// <summary><see cref="Random"/>'s entry as a raw container.</summary>
    public static byte[] RawContainer(CachedKv entry) => KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
}
