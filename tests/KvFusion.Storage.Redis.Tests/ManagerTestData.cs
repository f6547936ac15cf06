using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>Real KV containers (what the tier manager verifies on every read from a lower tier).</summary>
internal static class ManagerTestData
{
    public const string Model = "946484eb195bda404a4661999618030d7146ec263a962b584cd4ec38b205323f";
    public const string Tokenizer = "905ec451befb6560e7f841540178d2f6fd6aab8276f26ffa3429ebd2e599f20b";
    public const int Layers = 2;
    public const int Heads = 2;
    public const int HeadDim = 16;

    public static readonly KvNamespace Ns = new("alice", Model);

    public static KvContainerExpectation Expectation => new(Model, Tokenizer, Layers, Heads, HeadDim);

    public static CachedKv Entry(int seed, int tokens = 32)
    {
        var rng = new Random(seed);
        var ids = new int[tokens];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = rng.Next(0, 50_000);
        }

        var key = new CacheKey(CacheEntryKind.Chunk, ChunkId.Compute(Model, Tokenizer, ids).ToString(), "sink:bos");
        var n = Layers * Heads * tokens * HeadDim;
        return new CachedKv(key, Model, Tokenizer, ids, Layers, Heads, HeadDim, Values(rng, n), Values(rng, n));
    }

    public static (TierKey Key, byte[] Blob) Blob(int seed, int tokens = 32)
    {
        var entry = Entry(seed, tokens);
        return (new TierKey(Ns, entry.Key), KvContainerWriter.ToArray(entry, KvCodecSpec.Raw));
    }

    private static Half[] Values(Random rng, int count)
    {
        var values = new Half[count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (Half)((rng.NextSingle() * 2) - 1);
        }

        return values;
    }
}
