using KvFusion.Cache.Codecs;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Time.Testing;
using static KvFusion.Cache.Tests.Tiers.TierTestData;

namespace KvFusion.Cache.Tests.Tiers;

public sealed class HostMemoryTierTests
{
    [Fact]
    public async Task A_blob_round_trips_is_replaced_and_removed()
    {
        await using var tier = new HostMemoryTier();
        var key = Key(1);
        Assert.Null(await tier.GetAsync(key));
        await tier.PutAsync(key, Bytes(100, 1));
        Assert.Equal(Bytes(100, 1), (await tier.GetAsync(key))!.Value.ToArray());
        await tier.PutAsync(key, Bytes(50, 2));
        Assert.Equal(Bytes(50, 2), (await tier.GetAsync(key))!.Value.ToArray());
        Assert.Equal(50, tier.Bytes);
        Assert.True(await tier.ContainsAsync(key));
        Assert.True(await tier.RemoveAsync(key));
        Assert.False(await tier.RemoveAsync(key));
        Assert.False(await tier.ContainsAsync(key));
        Assert.Equal(0, tier.Bytes);
    }

    [Fact]
    public async Task The_put_copies_the_callers_buffer()
    {
        await using var tier = new HostMemoryTier();
        var buffer = Bytes(10);
        await tier.PutAsync(Key(1), buffer);
        buffer[0] ^= 0xff;
        Assert.Equal(Bytes(10), (await tier.GetAsync(Key(1)))!.Value.ToArray());
    }

    [Fact]
    public async Task Another_tenants_entry_reads_as_absent_and_lists_apart()
    {
        await using var tier = new HostMemoryTier();
        var alices = Key(7, Alice);
        var bobs = Key(7, Bob);
        await tier.PutAsync(alices, Bytes(10, 1));
        Assert.Null(await tier.GetAsync(bobs));
        Assert.False(await tier.ContainsAsync(bobs));
        await tier.PutAsync(bobs, Bytes(10, 2));
        Assert.Equal(Bytes(10, 1), (await tier.GetAsync(alices))!.Value.ToArray());
        Assert.Equal([alices], await tier.ListAsync(Alice).ToListAsync());
        Assert.Equal(2, (await tier.ListAsync().ToListAsync()).Count);
    }

    [Fact]
    public async Task Lru_evicts_the_least_recently_used_and_a_get_refreshes()
    {
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 300, EvictionPolicy = HostMemoryEvictionPolicy.Lru });
        await tier.PutAsync(Key(1), Bytes(100));
        await tier.PutAsync(Key(2), Bytes(100));
        await tier.PutAsync(Key(3), Bytes(100));
        Assert.NotNull(await tier.GetAsync(Key(1)));
        await tier.PutAsync(Key(4), Bytes(100));
        Assert.False(await tier.ContainsAsync(Key(2)));
        Assert.True(await tier.ContainsAsync(Key(1)));
        Assert.True(await tier.ContainsAsync(Key(3)));
        await tier.PutAsync(Key(5), Bytes(100));
        Assert.False(await tier.ContainsAsync(Key(3)));
        var stats = tier.Statistics();
        Assert.Equal(2, stats.Evictions);
        Assert.Equal(300, stats.Bytes);
        Assert.Equal(3, stats.Entries);
    }

    [Fact]
    public async Task Cost_aware_eviction_keeps_the_entry_that_saves_more_prefill_per_byte()
    {
        // A cachegen container saves about 12x more recompute per byte than opaque bytes of the same size.
        var (costly, costlyBlob) = ContainerBlob(1, tokens: 64, codec: KvCodecSpec.CacheGen(3));
        var cheapSize = costlyBlob.Length;
        var budget = (2L * cheapSize) + 10;
        foreach (var policy in new[] { HostMemoryEvictionPolicy.CostAware, HostMemoryEvictionPolicy.Lru })
        {
            await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = budget, EvictionPolicy = policy });
            Assert.True(tier.TryPut(costly, costlyBlob));
            await tier.PutAsync(Key(2), Bytes(cheapSize));
            await tier.PutAsync(Key(3), Bytes(cheapSize));
            var keptCostly = await tier.ContainsAsync(costly);
            Assert.Equal(policy == HostMemoryEvictionPolicy.CostAware, keptCostly);
        }
    }

    [Fact]
    public async Task Cost_aware_eviction_still_ages_out_an_entry_that_is_not_used_again()
    {
        var (costly, costlyBlob) = ContainerBlob(1, tokens: 64, codec: KvCodecSpec.CacheGen(3));
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 3L * costlyBlob.Length });
        Assert.True(tier.TryPut(costly, costlyBlob));
        // Cheap entries used over and over raise the inflation value past the costly one's priority.
        for (var i = 0; i < 200 && await tier.ContainsAsync(costly); i++)
        {
            await tier.PutAsync(Key(100 + i), Bytes(costlyBlob.Length, i));
        }

        Assert.False(await tier.ContainsAsync(costly));
    }

    [Fact]
    public async Task A_pinned_entry_is_not_evicted_and_a_put_that_cannot_fit_is_refused_without_evicting()
    {
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 200, EvictionPolicy = HostMemoryEvictionPolicy.Lru });
        await tier.PutAsync(Key(1), Bytes(100));
        await tier.PutAsync(Key(2), Bytes(100));
        using var lease1 = tier.Pin(Key(1));
        using (var lease2 = tier.Pin(Key(2)))
        {
            Assert.NotNull(lease1);
            Assert.Equal(Bytes(100), lease2!.Blob.ToArray());
            Assert.False(tier.TryPut(Key(3), Bytes(100)));
            Assert.True(await tier.ContainsAsync(Key(1)));
            Assert.True(await tier.ContainsAsync(Key(2)));
            Assert.Equal(1, tier.Statistics().Rejections);
        }

        // Key 2 is free again: it goes, key 1 stays pinned.
        Assert.True(tier.TryPut(Key(3), Bytes(100)));
        Assert.False(await tier.ContainsAsync(Key(2)));
        Assert.True(await tier.ContainsAsync(Key(1)));
        Assert.Null(tier.Pin(Key(42)));
    }

    [Fact]
    public async Task A_lease_that_is_never_disposed_runs_out_by_itself()
    {
        var time = new FakeTimeProvider();
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 100, MaxPinDuration = TimeSpan.FromMinutes(1) }, time);
        await tier.PutAsync(Key(1), Bytes(100));
        var lease = tier.Pin(Key(1), TimeSpan.FromHours(1));
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromMinutes(1), lease!.ExpiresAt);
        Assert.False(tier.TryPut(Key(2), Bytes(100)));
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(tier.IsPinned(Key(1)));
        Assert.True(tier.TryPut(Key(2), Bytes(100)));
        Assert.False(await tier.ContainsAsync(Key(1)));
        lease.Dispose();
        lease.Dispose();
        Assert.True(lease.IsReleased);
    }

    [Fact]
    public async Task An_entry_expires_after_its_time_to_live_unless_pinned()
    {
        var time = new FakeTimeProvider();
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { TimeToLive = TimeSpan.FromSeconds(10) }, time);
        await tier.PutAsync(Key(1), Bytes(10));
        await tier.PutAsync(Key(2), Bytes(10));
        using var lease = tier.Pin(Key(2));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(await tier.GetAsync(Key(1)));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Null(await tier.GetAsync(Key(1)));
        Assert.NotNull(await tier.GetAsync(Key(2)));
        lease!.Dispose();
        Assert.Equal(1, tier.RemoveExpired());
        var stats = tier.Statistics();
        Assert.Equal(2, stats.Expirations);
        Assert.Equal(0, stats.Entries);
    }

    [Fact]
    public async Task A_blob_larger_than_the_budget_is_refused()
    {
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 50 });
        await tier.PutAsync(Key(1), Bytes(51));
        Assert.False(await tier.ContainsAsync(Key(1)));
        Assert.Equal(1, tier.Statistics().Rejections);
    }

    [Fact]
    public async Task Statistics_count_hits_misses_and_puts()
    {
        await using var tier = new HostMemoryTier();
        await tier.PutAsync(Key(1), Bytes(10));
        await tier.GetAsync(Key(1));
        await tier.GetAsync(Key(2));
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal((1, 1, 1, 10L), (stats.Hits, stats.Misses, stats.Puts, stats.Bytes));
    }

    [Fact]
    public async Task Sixteen_writers_against_a_full_budget_neither_deadlock_nor_exceed_it()
    {
        const long budget = 64 * 1024;
        await using var tier = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = budget });
        var over = 0;
        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            for (var i = 0; i < 2000; i++)
            {
                var key = Key(rng.Next(0, 400));
                switch (rng.Next(0, 4))
                {
                    case 0:
                        using (tier.Pin(key, TimeSpan.FromSeconds(5)))
                        {
                            await tier.PutAsync(Key(rng.Next(0, 400)), Bytes(rng.Next(1, 8192), i));
                        }

                        break;
                    case 1:
                        await tier.GetAsync(key);
                        break;
                    case 2:
                        await tier.RemoveAsync(key);
                        break;
                    default:
                        await tier.PutAsync(key, Bytes(rng.Next(1, 8192), i));
                        break;
                }

                if (tier.Bytes > budget)
                {
                    Interlocked.Increment(ref over);
                }
            }
        })).ToArray();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, over);
        var stats = tier.Statistics();
        Assert.True(stats.Bytes <= budget);
        Assert.True(stats.Evictions > 0);
        var sum = 0L;
        await foreach (var key in tier.ListAsync())
        {
            sum += (await tier.GetAsync(key))!.Value.Length;
        }

        Assert.Equal(stats.Bytes, sum);
    }

    [Theory]
    [InlineData("ByteBudget")]
    [InlineData("TimeToLive")]
    [InlineData("MaxPinDuration")]
    public void A_bad_setting_is_refused_by_name(string setting)
    {
        var options = setting switch
        {
            "ByteBudget" => new HostMemoryTierOptions { ByteBudget = 0 },
            "TimeToLive" => new HostMemoryTierOptions { TimeToLive = TimeSpan.Zero },
            _ => new HostMemoryTierOptions { MaxPinDuration = TimeSpan.FromSeconds(-1) },
        };
        var e = Assert.Throws<ArgumentException>(() => new HostMemoryTier(options));
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);
    }
}
