using System.Diagnostics;
using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Networking;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>The tier when its Redis goes away, comes back, or answers slowly (private servers, so nothing else is disturbed).</summary>
public sealed class RedisTierFaultTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    private static RedisTierOptions OptionsFor(string address) => new()
    {
        Configuration = address,
        KeyPrefix = "kvt-fault",
        ConnectTimeout = Timeout,
        OperationTimeout = Timeout,
        PieceBytes = 1024,
    };

    [SkippableFact]
    public async Task A_stopped_server_makes_operations_unavailable_and_a_restarted_one_serves_again()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        await using var tier = await RedisTier.ConnectAsync(OptionsFor(server.Address));
        var key = Keys.Chunk(Keys.TenantA, 1);
        await tier.PutAsync(key, Keys.Random(5000, 1));
        Assert.NotNull(await tier.GetAsync(key));

        await server.StopAsync();

        var clock = Stopwatch.StartNew();
        var get = await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.GetAsync(key));
        Assert.Contains("'redis'", get.Message, StringComparison.Ordinal);
        Assert.Contains(server.Address, get.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.PutAsync(key, new byte[10]));
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.ContainsAsync(key));
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.RemoveAsync(key));
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.ProbeAsync());
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.GetStatisticsAsync());
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await RedisTierTests.ToSetAsync(tier.ListAsync()));

        // Seven operations, each bounded by the operation timeout (a generous bound: the point is that none hangs).
        Assert.True(clock.Elapsed < 7 * (Timeout + TimeSpan.FromSeconds(4)), $"the failing operations took {clock.Elapsed}");

        await server.StartAsync();
        await WaitUntilServingAsync(tier);
        await tier.PutAsync(key, new byte[] { 4, 5, 6 });
        Assert.Equal(new byte[] { 4, 5, 6 }, (await tier.GetAsync(key))!.Value.ToArray());
        Assert.Single(await RedisTierTests.ToSetAsync(tier.ListAsync()));
    }

    [SkippableFact]
    public async Task A_tier_created_while_redis_is_down_serves_once_it_is_up()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        await server.StopAsync();

        await using var tier = await RedisTier.ConnectAsync(OptionsFor(server.Address));
        Assert.False(tier.IsConnected);
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.GetAsync(Keys.Chunk(Keys.TenantA, 2)));

        // Closing a tier whose Redis is down returns (the bound only keeps a hang from stalling the run).
        var other = await RedisTier.ConnectAsync(OptionsFor(server.Address));
        await other.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await other.GetAsync(Keys.Chunk(Keys.TenantA, 2)));

        await server.StartAsync();
        await WaitUntilServingAsync(tier);
        await tier.PutAsync(Keys.Chunk(Keys.TenantA, 2), new byte[] { 1 });
        Assert.True(await tier.ContainsAsync(Keys.Chunk(Keys.TenantA, 2)));
    }

    [SkippableFact]
    public async Task A_server_slower_than_the_operation_timeout_is_unavailable()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        await using var proxy = new ThrottlingTcpProxy("127.0.0.1", server.Port);
        await using var tier = await RedisTier.ConnectAsync(OptionsFor(proxy.Address));
        var key = Keys.Chunk(Keys.TenantA, 3);
        await tier.PutAsync(key, Keys.Random(3000, 3));

        proxy.Delay = 3 * Timeout;
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.GetAsync(key));

        proxy.Delay = TimeSpan.Zero;
        await WaitUntilServingAsync(tier);
        Assert.NotNull(await tier.GetAsync(key));
    }

    private static Task WaitUntilServingAsync(RedisTier tier) => RedisTierTests.WaitUntilAsync(async () =>
    {
        try
        {
            await tier.ProbeAsync();
            return true;
        }
        catch (KvTierUnavailableException)
        {
            return false;
        }
    }, "the tier to serve again");
}

/// <summary>The tier when one node of its cluster goes away and comes back.</summary>
public sealed class RedisTierClusterFaultTests
{
    [SkippableFact]
    public async Task A_lost_cluster_node_makes_the_tier_unavailable_until_it_rejoins()
    {
        await using var cluster = await PrivateRedisCluster.StartAsync();
        await using var tier = await RedisTier.ConnectAsync(new RedisTierOptions
        {
            Configuration = cluster.Configuration,
            KeyPrefix = "kvt-node",
            ConnectTimeout = TimeSpan.FromSeconds(1),
            OperationTimeout = TimeSpan.FromSeconds(1),
            PieceBytes = 1024,
        });

        // 64 pieces: some on every node.
        var key = Keys.Chunk(Keys.TenantA, 1);
        var value = Keys.Random(64 * 1024, 1);
        await tier.PutAsync(key, value);
        Assert.Equal(value, (await tier.GetAsync(key))!.Value.ToArray());
        await tier.ProbeAsync();

        var lost = cluster.Nodes[1];
        await lost.StopAsync();

        var get = await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.GetAsync(key));
        Assert.Contains("'redis'", get.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.PutAsync(key, value));
        var probe = await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await tier.ProbeAsync());
        Assert.Contains(lost.Address, probe.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<KvTierUnavailableException>(async () => await RedisTierTests.ToSetAsync(tier.ListAsync()));

        await lost.StartAsync();
        await cluster.WaitHealthyAsync();
        await RedisTierTests.WaitUntilAsync(async () =>
        {
            try
            {
                await tier.ProbeAsync();
                await tier.PutAsync(key, value);
                return true;
            }
            catch (KvTierUnavailableException)
            {
                return false;
            }
        }, "the tier to serve again after the node rejoined");
        Assert.Equal(value, (await tier.GetAsync(key))!.Value.ToArray());
        Assert.Equal([key], await RedisTierTests.ToSetAsync(tier.ListAsync()));
    }
}
