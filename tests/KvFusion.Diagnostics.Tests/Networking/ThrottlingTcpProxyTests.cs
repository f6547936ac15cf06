using System.Diagnostics;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Networking;
using KvFusion.Storage.Redis;
using KvFusion.TestSupport;

namespace KvFusion.Diagnostics.Tests.Networking;

public sealed class ThrottlingTcpProxyTests
{
    private static readonly TierKey Key = new(
        new KvNamespace("alice", KvTestEntries.Model),
        new CacheKey(CacheEntryKind.Chunk, new string('a', 64), "sink:bos"));

    [SkippableFact]
    public async Task A_redis_blob_read_through_the_proxy_arrives_whole_and_no_faster_than_its_rate()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        await using var proxy = new ThrottlingTcpProxy("127.0.0.1", server.Port);
        await using var tier = await RedisTier.ConnectAsync(new RedisTierOptions { Configuration = proxy.Address, KeyPrefix = "kvt-proxy" });
        var blob = new byte[1_000_000];
        new Random(7).NextBytes(blob);
        await tier.PutAsync(Key, blob);

        // 20 Mbit/s: the megabyte takes 0.4 s on the wire.
        proxy.BitsPerSecond = 20e6;
        var before = proxy.BytesDown;
        var clock = Stopwatch.StartNew();
        var read = await tier.GetAsync(Key);
        clock.Stop();
        Assert.Equal(blob, read!.Value.ToArray());
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.38), $"read in {clock.Elapsed.TotalMilliseconds:F0} ms through a 20 Mbit/s proxy");
        Assert.InRange(proxy.BytesDown - before, blob.Length, blob.Length + 4096);

        proxy.BitsPerSecond = null;
        Assert.Equal(blob, (await tier.GetAsync(Key))!.Value.ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(double.NaN)]
    public async Task A_rate_out_of_range_is_refused(double bitsPerSecond)
    {
        await using var proxy = new ThrottlingTcpProxy("127.0.0.1", 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => proxy.BitsPerSecond = bitsPerSecond);
        Assert.Null(proxy.BitsPerSecond);
    }
}
