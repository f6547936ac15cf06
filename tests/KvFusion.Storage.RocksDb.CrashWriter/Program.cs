using System.Globalization;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Storage.RocksDb;

// Usage: CrashWriter PATH TENANT MODEL_FINGERPRINT COUNT [SEED] [SYNC]
// Puts COUNT containers of random fp16 (0: until killed) and prints "ack {tenant}/{model}/{entry}" after each put
// has returned, then "done" after the tier has closed.
if (args.Length < 4)
{
    await Console.Error.WriteLineAsync("usage: CrashWriter PATH TENANT MODEL_FINGERPRINT COUNT [SEED] [SYNC]");
    return 2;
}

var ns = new KvNamespace(args[1], args[2]);
var count = int.Parse(args[3], CultureInfo.InvariantCulture);
var seed = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
var sync = args.Length > 5 && bool.Parse(args[5]);
var rng = new Random(seed);
const string Tokenizer = "905ec451befb6560e7f841540178d2f6fd6aab8276f26ffa3429ebd2e599f20b";
const int Layers = 2;
const int Heads = 2;
const int HeadDim = 64;

var tier = new RocksDbTier(new RocksDbTierOptions { Path = args[0], SyncWrites = sync });
await using (tier.ConfigureAwait(false))
{
    for (var i = 0; count == 0 || i < count; i++)
    {
        // 16 to 128 tokens: 16 to 128 KiB of fp16, around the blob-file threshold on both sides.
        var tokens = rng.Next(16, 129);
        var ids = new int[tokens];
        for (var t = 0; t < ids.Length; t++)
        {
            ids[t] = rng.Next(0, 50_000);
        }

        var n = Layers * Heads * tokens * HeadDim;
        var keys = new Half[n];
        var values = new Half[n];
        for (var v = 0; v < n; v++)
        {
            keys[v] = (Half)((rng.NextSingle() * 8) - 4);
            values[v] = (Half)((rng.NextSingle() * 8) - 4);
        }

        var id = ChunkId.Compute(ns.ModelFingerprint, Tokenizer, ids).ToString();
        var entry = new CachedKv(new CacheKey(CacheEntryKind.Chunk, id, "sink:bos"), ns.ModelFingerprint, Tokenizer, ids, Layers, Heads, HeadDim, keys, values);
        var key = new TierKey(ns, entry.Key);
        await tier.PutAsync(key, KvContainerWriter.ToArray(entry, KvCodecSpec.Raw)).ConfigureAwait(false);
        await Console.Out.WriteLineAsync($"ack {key}").ConfigureAwait(false);
        await Console.Out.FlushAsync().ConfigureAwait(false);
    }
}

await Console.Out.WriteLineAsync("done").ConfigureAwait(false);
return 0;
