using System.Diagnostics;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Networking;
using StackExchange.Redis;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>
/// The Redis tier under the tier manager, with real servers: Redis going away and coming back, Redis answering slowly,
/// and bytes corrupted in Redis behind the manager's back.
/// </summary>
public sealed class RedisTierManagerTests
{
    public static TheoryData<string> Kinds => RedisTestServers.Kinds;

    private static RedisTierOptions FaultOptions(string address, string prefix) => new()
    {
        Configuration = address,
        KeyPrefix = prefix,
        ConnectTimeout = TimeSpan.FromSeconds(1),
        OperationTimeout = TimeSpan.FromSeconds(1),
        PieceBytes = 1024,
    };

    [SkippableFact]
    public async Task Redis_stopped_and_restarted_during_puts_and_gets_fails_no_caller_and_is_caught_up()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        var options = FaultOptions(server.Address, "kvt-mgr");
        var redis = await RedisTier.ConnectAsync(options);
        await using var manager = new KvTierManager(new HostMemoryTier(), [redis], new KvTierManagerOptions
        {
            OperationTimeout = TimeSpan.FromSeconds(2),
            ProbeInterval = TimeSpan.FromMilliseconds(200),
        });

        var written = new List<(TierKey Key, byte[] Blob)>();
        const int total = 60, stopAt = 20, startAt = 40;
        for (var i = 0; i < total; i++)
        {
            if (i == stopAt)
            {
                await server.StopAsync();
            }
            else if (i == startAt)
            {
                await server.StartAsync();
            }

            // Every call below must succeed whatever Redis is doing: puts land in memory, gets are answered from it.
            var (key, blob) = ManagerTestData.Blob(i);
            await manager.PutAsync(key, blob);
            written.Add((key, blob));
            var (earlier, earlierBlob) = written[i / 2];
            Assert.Equal(earlierBlob, (await manager.GetAsync(earlier))!.Value.ToArray());
            Assert.True(await manager.ContainsAsync(key));

            // A read that has to go down to Redis (not in memory) is answered or a miss, never an error.
            var (other, _) = ManagerTestData.Blob(1000 + i);
            Assert.Null(await manager.GetAsync(other));
        }

        Assert.True(manager.GetStatistics().Tiers[0].Outages >= 1, "the manager never marked Redis down while it was stopped");
        await WaitCaughtUpAsync(manager, total);
        await manager.FlushAsync();

        // The server kept nothing from before its stop (no persistence); everything written from the stop on must be there.
        await using var fresh = await RedisTier.ConnectAsync(options);
        foreach (var (key, blob) in written.Skip(stopAt))
        {
            var back = await fresh.GetAsync(key);
            Assert.True(back is not null, $"{key}, written while Redis was down or after, is not in Redis after the catch-up");
            Assert.Equal(blob, back.Value.ToArray());
        }
    }

    [SkippableFact]
    public async Task A_slow_redis_is_marked_down_by_the_manager_timeout_and_requests_stay_fast()
    {
        await using var server = await RedisServerProcess.StartNewAsync();
        await using var proxy = new ThrottlingTcpProxy("127.0.0.1", server.Port);
        var managerTimeout = TimeSpan.FromMilliseconds(300);
        var options = FaultOptions(proxy.Address, "kvt-slow") with { OperationTimeout = TimeSpan.FromSeconds(15), PieceExpiryGrace = TimeSpan.FromMinutes(1) };
        var redis = await RedisTier.ConnectAsync(options);
        await using var manager = new KvTierManager(new HostMemoryTier(), [redis], new KvTierManagerOptions
        {
            OperationTimeout = managerTimeout,
            ProbeInterval = TimeSpan.FromMilliseconds(200),
        });

        var (cold, coldBlob) = ManagerTestData.Blob(1);
        await manager.PutAsync(cold, coldBlob);
        await manager.FlushAsync();
        await manager.Memory.RemoveAsync(cold);
        Assert.Equal(coldBlob, (await manager.GetAsync(cold))!.Value.ToArray());
        await manager.Memory.RemoveAsync(cold);

        proxy.Delay = TimeSpan.FromSeconds(8);

        // Generous bounds, far under the 8 s Redis now takes: the one request that finds Redis slow waits about the
        // manager's timeout, and every request after that is served without it.
        var clock = Stopwatch.StartNew();
        Assert.Null(await manager.GetAsync(cold));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the read that found Redis slow took {clock.Elapsed}");
        Assert.Equal(KvTierState.Down, manager.GetStatistics().Tiers[0].State);

        var slowest = TimeSpan.Zero;
        var written = new List<(TierKey Key, byte[] Blob)>();
        for (var i = 0; i < 40; i++)
        {
            var (key, blob) = ManagerTestData.Blob(100 + i);
            clock.Restart();
            await manager.PutAsync(key, blob);
            Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
            Assert.Null(await manager.GetAsync(ManagerTestData.Blob(500 + i).Key));
            slowest = TimeSpan.FromTicks(Math.Max(slowest.Ticks, clock.Elapsed.Ticks));
            written.Add((key, blob));
        }

        Assert.True(slowest < TimeSpan.FromSeconds(2.5), $"with Redis marked down the slowest put+get+miss took {slowest}");
        Assert.Equal(KvTierState.Down, manager.GetStatistics().Tiers[0].State);

        // Fast again: the probe brings it back and the catch-up writes what it missed.
        proxy.Delay = TimeSpan.Zero;
        await WaitCaughtUpAsync(manager, 1 + written.Count);
        await manager.FlushAsync();
        await using var fresh = await RedisTier.ConnectAsync(FaultOptions(server.Address, "kvt-slow"));
        foreach (var (key, blob) in written)
        {
            Assert.Equal(blob, (await fresh.GetAsync(key))?.ToArray());
        }
    }

    /// <summary>
    /// Waits until Redis is up again with every write applied. FlushAsync alone is not enough right after an outage:
    /// the manager's catch-up takes the remembered keys before it queues them, and a flush in between sees nothing
    /// pending. Each key here is written once, so the tier's count of applied writes says when all have landed.
    /// </summary>
    private static Task WaitCaughtUpAsync(KvTierManager manager, int writes) => RedisTierTests.WaitUntilAsync(
        () => Task.FromResult(manager.GetStatistics().Tiers[0] is { State: KvTierState.Up, CatchUpPending: 0, QueuedWrites: 0 } health && health.WritesDone >= writes),
        "Redis to be marked up and caught up");

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Bytes_corrupted_in_redis_are_detected_removed_and_a_miss_through_the_container_store(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024 });
        await using var manager = new KvTierManager(new HostMemoryTier(), [scope.Tier], new KvTierManagerOptions { OwnsTiers = false });
        var store = new ContainerKvStore(manager.For(ManagerTestData.Ns), ManagerTestData.Expectation);
        var entry = ManagerTestData.Entry(7);
        var key = new TierKey(ManagerTestData.Ns, entry.Key);
        await store.PutAsync(entry);
        await manager.FlushAsync();
        await manager.Memory.RemoveAsync(key);
        Assert.NotNull(await store.GetAsync(entry.Key));
        await manager.Memory.RemoveAsync(key);

        var pieces = await scope.PieceKeysAsync(key);
        Assert.True(pieces.Length > 2);
        await scope.Db.StringSetRangeAsync(pieces[1], 10, "corrupt");

        Assert.Null(await store.GetAsync(entry.Key));
        Assert.Equal(1, manager.GetStatistics().CorruptRemoved);
        Assert.Empty(await scope.AllKeysAsync());
        Assert.Null(await scope.Tier.GetAsync(key));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_corrupt_container_that_passes_the_redis_hash_is_caught_by_the_manager_and_removed(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024 });
        await using var manager = new KvTierManager(new HostMemoryTier(), [scope.Tier], new KvTierManagerOptions { OwnsTiers = false });
        var store = new ContainerKvStore(manager.For(ManagerTestData.Ns), ManagerTestData.Expectation);
        var entry = ManagerTestData.Entry(8);
        var key = new TierKey(ManagerTestData.Ns, entry.Key);
        await store.PutAsync(entry);
        await manager.FlushAsync();
        await manager.Memory.RemoveAsync(key);

        // Damage the value and write a manifest whose hash matches the damage: only the container checksums can tell.
        var blob = (await scope.Tier.GetAsync(key))!.Value.ToArray();
        blob[^5] ^= 0x55;
        var manifestKey = scope.ManifestKey(key);
        var old = RedisManifest.Parse((byte[])(await scope.Db.StringGetAsync(manifestKey))!, long.MaxValue, key.ToString());
        var forged = RedisManifest.For(old.Generation, blob, old.PieceBytes);
        var last = old.PieceCount - 1;
        await scope.Db.StringSetAsync(new RedisKeyLayout(scope.Prefix).Piece(key, old.Generation, last), blob.AsMemory(last * old.PieceBytes));
        await scope.Db.StringSetAsync(manifestKey, forged.ToBytes());
        Assert.Equal(blob, (await scope.Tier.GetAsync(key))!.Value.ToArray());

        Assert.Null(await store.GetAsync(entry.Key));
        Assert.Equal(1, manager.GetStatistics().CorruptRemoved);
        Assert.Empty(await scope.AllKeysAsync());
    }
}
