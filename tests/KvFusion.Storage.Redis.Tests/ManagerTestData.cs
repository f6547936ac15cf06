using KvFusion.Cache.Chunks;
using KvFusion.Cache.Container;
using KvFusion.Cache.Tiers;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>Real KV containers (what the tier manager verifies on every read from a lower tier).</summary>
internal static class ManagerTestData
{
    public const string Model = KvTestEntries.Model;
    public const string Tokenizer = KvTestEntries.Tokenizer;
    public const int Layers = 2;
    public const int Heads = 2;
    public const int HeadDim = 16;

    public static readonly KvNamespace Ns = new("alice", Model);

    public static KvContainerExpectation Expectation => new(Model, Tokenizer, Layers, Heads, HeadDim);

    public static CachedKv Entry(int seed, int tokens = 32) => KvTestEntries.Random(seed, tokens, Layers, Heads, HeadDim);

    public static (TierKey Key, byte[] Blob) Blob(int seed, int tokens = 32)
    {
        var entry = Entry(seed, tokens);
        return (new TierKey(Ns, entry.Key), KvTestEntries.RawContainer(entry));
    }
}
