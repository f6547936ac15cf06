using System.Collections.Concurrent;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Storage.Redis;
using StackExchange.Redis;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>
/// The shared test servers: a standalone Redis at <c>KVF_TEST_REDIS</c> and a Redis Cluster at
/// <c>KVF_TEST_REDIS_CLUSTER</c> (defaults: scripts/ci/redis-up.sh's ports). A test that needs one skips, naming the
/// variable and the address tried, when it does not answer.
/// </summary>
internal static class RedisTestServers
{
    public const string StandaloneVariable = "KVF_TEST_REDIS";
    public const string ClusterVariable = "KVF_TEST_REDIS_CLUSTER";
    public const string Standalone = "standalone";
    public const string Cluster = "cluster";

    private static readonly ConcurrentDictionary<string, Lazy<Task<string?>>> Checked = new();

    public static TheoryData<string> Kinds => new() { Standalone, Cluster };

    /// <summary>The configuration string of <paramref name="kind"/>, or a skip when that server does not answer.</summary>
    public static async Task<string> RequireAsync(string kind)
    {
        var (variable, fallback) = kind == Cluster
            ? (ClusterVariable, "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103")
            : (StandaloneVariable, "127.0.0.1:6390");
        var address = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } set ? set : fallback;
        var problem = await Checked.GetOrAdd(address, a => new Lazy<Task<string?>>(() => CheckAsync(a, kind == Cluster))).Value;
        Skip.If(problem is not null, $"{variable}: {problem} at {address} (start the servers with scripts/ci/redis-up.sh, or set {variable})");
        return address;
    }

    private static async Task<string?> CheckAsync(string address, bool cluster)
    {
        var first = address.Split(',')[0];
        if (!await RedisServerProcess.AnswersPingAsync(first, TimeSpan.FromSeconds(2)))
        {
            return "no Redis answers";
        }

        if (cluster && (await RedisServerProcess.SendAsync(first, "CLUSTER INFO", TimeSpan.FromSeconds(2)))?.Contains("cluster_state:ok", StringComparison.Ordinal) != true)
        {
            return "no Redis Cluster in cluster_state:ok answers";
        }

        return null;
    }
}

/// <summary>
/// A tier on a test server under a key prefix of its own, with a direct connection for what tests do to Redis behind
/// the tier's back; disposing deletes every key under the prefix.
/// </summary>
internal sealed class TierScope : IAsyncDisposable
{
    private TierScope(RedisTier tier, ConnectionMultiplexer direct)
    {
        Tier = tier;
        Direct = direct;
    }

    public RedisTier Tier { get; }

    public ConnectionMultiplexer Direct { get; }

    public IDatabase Db => Direct.GetDatabase();

    public string Prefix => Tier.Options.KeyPrefix;

    public static async Task<TierScope> CreateAsync(string kind, Func<RedisTierOptions, RedisTierOptions>? configure = null)
    {
        var configuration = await RedisTestServers.RequireAsync(kind);
        var options = new RedisTierOptions { Configuration = configuration, KeyPrefix = "kvt-" + Guid.NewGuid().ToString("N")[..12] };
        options = configure?.Invoke(options) ?? options;
        var tier = await RedisTier.ConnectAsync(options);
        var direct = await ConnectionMultiplexer.ConnectAsync(configuration);
        return new TierScope(tier, direct);
    }

    /// <summary>The manifest key of <paramref name="key"/> (the layout is the tier's own).</summary>
    public string ManifestKey(TierKey key) => new RedisKeyLayout(Prefix).Manifest(key);

    /// <summary>The piece keys the current manifest of <paramref name="key"/> names.</summary>
    public async Task<string[]> PieceKeysAsync(TierKey key)
    {
        var raw = await Db.StringGetAsync(ManifestKey(key));
        Assert.False(raw.IsNull, $"{key} has no manifest");
        var manifest = RedisManifest.Parse((byte[])raw!, long.MaxValue, key.ToString());
        var layout = new RedisKeyLayout(Prefix);
        return [.. Enumerable.Range(0, manifest.PieceCount).Select(i => layout.Piece(key, manifest.Generation, i))];
    }

    /// <summary>Every key under the prefix, on every primary.</summary>
    public async Task<List<string>> AllKeysAsync()
    {
        var keys = new List<string>();
        foreach (var server in Direct.GetServers().Where(s => !s.IsReplica))
        {
            await foreach (var k in server.KeysAsync(pattern: Prefix + ":*"))
            {
                keys.Add(k.ToString());
            }
        }

        return keys;
    }

    /// <summary>The keys under <c>{prefix}{infix}</c> that each primary holds, by its endpoint (its own SCAN, not the client's slot map).</summary>
    public async Task<Dictionary<string, List<string>>> KeysByNodeAsync(string infix)
    {
        var result = new Dictionary<string, List<string>>();
        foreach (var server in Direct.GetServers().Where(s => !s.IsReplica))
        {
            var keys = new List<string>();
            await foreach (var k in server.KeysAsync(pattern: Prefix + infix + "*"))
            {
                keys.Add(k.ToString());
            }

            result[server.EndPoint.ToString() ?? "?"] = keys;
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var key in await AllKeysAsync())
            {
                await Db.KeyDeleteAsync(key);
            }
        }
        finally
        {
            await Tier.DisposeAsync();
            await Direct.DisposeAsync();
        }
    }
}

internal static class Keys
{
    public static readonly KvNamespace TenantA = new("tenant-a", "aaaa0001");
    public static readonly KvNamespace TenantB = new("tenant-b", "aaaa0001");
    public static readonly KvNamespace TenantAOtherModel = new("tenant-a", "bbbb0002");

    public static TierKey Chunk(KvNamespace ns, int n, string variant = "raw") => new(ns, new CacheKey(CacheEntryKind.Chunk, n.ToString("x8", System.Globalization.CultureInfo.InvariantCulture), variant));

    public static TierKey Prefix(KvNamespace ns, int n) => new(ns, new CacheKey(CacheEntryKind.PrefixBlock, n.ToString("x16", System.Globalization.CultureInfo.InvariantCulture), string.Empty));

    public static byte[] Random(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
