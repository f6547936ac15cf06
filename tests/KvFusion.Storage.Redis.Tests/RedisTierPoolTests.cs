using StackExchange.Redis;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>The pool of connections (<see cref="RedisTierOptions.Connections"/>): values cut into pieces that travel
/// over different connections still round-trip, and a connection of the pool that drops does not take the tier down.</summary>
public sealed class RedisTierPoolTests
{
    public static TheoryData<string> Kinds => RedisTestServers.Kinds;

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Values_whose_pieces_travel_over_several_connections_round_trip(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024, Connections = 3 });
        var tier = scope.Tier;
        var values = Enumerable.Range(0, 12).Select(i => (Key: Keys.Chunk(Keys.TenantA, i), Value: Keys.Random(1000 + (i * 1777), i))).ToArray();

        // Concurrent puts and gets: each operation starts on another connection, and its pieces go to all of them.
        await Task.WhenAll(values.Select(v => tier.PutAsync(v.Key, v.Value).AsTask()));
        var got = await Task.WhenAll(values.Select(v => tier.GetAsync(v.Key).AsTask()));
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i].Value, got[i]!.Value.ToArray());
            Assert.True(await tier.ContainsAsync(values[i].Key));
        }

        Assert.Equal(values.Length, (await RedisTierTests.ToSetAsync(tier.ListAsync())).Count);
        Assert.Equal(values.Length, (await tier.GetStatisticsAsync()).Entries);
        foreach (var (key, _) in values)
        {
            Assert.True(await tier.RemoveAsync(key));
        }

        Assert.Empty(await scope.AllKeysAsync());
    }

    [SkippableFact]
    public async Task The_tier_opens_as_many_connections_as_configured()
    {
        var name = "kvt-pool-" + Guid.NewGuid().ToString("N")[..8];
        await using var scope = await TierScope.CreateAsync(RedisTestServers.Standalone, o => o with { Configuration = o.Configuration + ",name=" + name, Connections = 3 });
        await scope.Tier.ProbeAsync();
        Assert.Equal(3, (await InteractiveClientsAsync(scope, name)).Length);
    }

    [SkippableFact]
    public async Task A_dropped_connection_of_the_pool_is_skipped_and_reconnects()
    {
        var name = "kvt-pool-" + Guid.NewGuid().ToString("N")[..8];
        await using var scope = await TierScope.CreateAsync(RedisTestServers.Standalone, o => o with { Configuration = o.Configuration + ",name=" + name, Connections = 2, PieceBytes = 1024 });
        var tier = scope.Tier;
        var key = Keys.Chunk(Keys.TenantA, 1);
        var value = Keys.Random(5000, 1);
        await tier.PutAsync(key, value);
        var before = await InteractiveClientsAsync(scope, name);
        Assert.Equal(2, before.Length);

        await scope.Db.ExecuteAsync("CLIENT", "KILL", "ID", before[0]);

        // Commands already on the killed socket may fail as unavailable; once the client has seen the drop, every
        // operation goes through the connection that is up until the other one is back.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var inARow = 0;
        while (inARow < 20)
        {
            Assert.True(DateTime.UtcNow < deadline, "the tier did not serve again after one of its connections was killed");
            try
            {
                await tier.PutAsync(key, value);
                Assert.Equal(value, (await tier.GetAsync(key))!.Value.ToArray());
                inARow++;
            }
            catch (KvFusion.Cache.Tiers.KvTierUnavailableException)
            {
                inARow = 0;
                await Task.Delay(50);
            }
        }

        // The killed connection comes back on its own.
        while ((await InteractiveClientsAsync(scope, name)).Length < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the killed connection of the pool did not reconnect");
            await Task.Delay(50);
        }

        Assert.DoesNotContain(before[0], await InteractiveClientsAsync(scope, name));
        await tier.ProbeAsync();
        Assert.Equal(value, (await tier.GetAsync(key))!.Value.ToArray());
    }

    [Fact]
    public void The_whole_range_of_connections_is_valid_and_the_default_is_one()
    {
        new RedisTierOptions { Configuration = "127.0.0.1:6390", Connections = 1 }.Validate();
        new RedisTierOptions { Configuration = "127.0.0.1:6390", Connections = RedisTierOptions.MaxConnections }.Validate();
        Assert.Equal(1, new RedisTierOptions().Connections);
    }

    /// <summary>The ids of the clients named <paramref name="name"/> that are not subscribers (one per pool connection).</summary>
    private static async Task<string[]> InteractiveClientsAsync(TierScope scope, string name)
    {
        var list = (string?)await scope.Db.ExecuteAsync("CLIENT", "LIST") ?? string.Empty;
        return [.. list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ').Select(f => f.Split('=', 2)).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1]))
            .Where(f => f.GetValueOrDefault("name") == name && f.GetValueOrDefault("sub") == "0" && f.GetValueOrDefault("psub") == "0")
            .Select(f => f["id"])];
    }
}
