using System.Reflection;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Storage.RocksDb;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>Namespaces, keys and real containers of random fp16 for the tier tests.</summary>
internal static class TestData
{
    public const string ModelA = KvTestEntries.Model;
    public const string ModelB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    public const string Tokenizer = KvTestEntries.Tokenizer;

    public static readonly KvNamespace AliceA = new("alice", ModelA);
    public static readonly KvNamespace BobA = new("bob", ModelA);
    public static readonly KvNamespace AliceB = new("alice", ModelB);

    /// <summary>A chunk key whose id is derived from <paramref name="seed"/>.</summary>
    public static CacheKey Key(int seed, string variant = "sink:bos") =>
        new(CacheEntryKind.Chunk, ChunkId.Compute(ModelA, Tokenizer, [seed, seed * 7, 11]).ToString(), variant);

    public static TierKey At(KvNamespace ns, int seed) => new(ns, Key(seed));

    /// <summary>A raw container of random fp16 for model <paramref name="model"/>.</summary>
    public static byte[] Container(int seed, int tokens = 8, string model = ModelA, int headDim = 16) =>
        KvTestEntries.RawContainer(Entry(seed, tokens, model, headDim));

    /// <summary>An entry of random fp16 (2 layers, 2 KV heads) under <see cref="Key"/>(<paramref name="seed"/>).</summary>
    public static CachedKv Entry(int seed, int tokens = 8, string model = ModelA, int headDim = 16) =>
        KvTestEntries.Random(seed, tokens, headDim: headDim, model: model, key: Key(seed), amplitude: 4);

    /// <summary><paramref name="length"/> bytes filled with <paramref name="fill"/> (the tier never looks inside a blob).</summary>
    public static byte[] Bytes(int length, byte fill) => Enumerable.Repeat(fill, length).ToArray();

    public static RocksDbTier Open(TempDirectory temp, long budget = 0, long maxValueBytes = 1L << 30) =>
        new(new RocksDbTierOptions { Path = temp.Combine("db"), ByteBudget = budget, MaxValueBytes = maxValueBytes });

    public static async Task<List<TierKey>> ListAsync(IKvTier tier, KvNamespace? ns = null)
    {
        var keys = new List<TierKey>();
        await foreach (var key in tier.ListAsync(ns))
        {
            keys.Add(key);
        }

        return keys;
    }

    /// <summary>The crash writer's dll, as its build put it in the test assembly's metadata.</summary>
    public static string CrashWriterPath =>
        typeof(TestData).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CrashWriterPath").Value
        ?? throw new InvalidOperationException("The test assembly does not name the crash writer.");
}
