using System.Diagnostics;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Container;
using KvFusion.Cache.Tiers;
using static KvFusion.Cache.Tests.Tiers.TierTestData;

namespace KvFusion.Cache.Tests.Tiers;

public sealed class KvTierManagerTests
{
    private static readonly KvTierManagerOptions Fast = new() { OperationTimeout = TimeSpan.FromMilliseconds(300), ProbeInterval = TimeSpan.FromMilliseconds(20) };

    [Fact]
    public async Task A_put_lands_in_memory_at_once_and_reaches_every_lower_tier()
    {
        var disk = new ControllableTier("disk");
        var shared = new ControllableTier("shared");
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk, shared], Fast);
        var (key, blob) = ContainerBlob(1);
        await manager.PutAsync(key, blob);
        Assert.True(manager.Memory.TryPeek(key, out _));
        await manager.FlushAsync();
        Assert.Equal(blob, (await disk.Inner.GetAsync(key))!.Value.ToArray());
        Assert.Equal(blob, (await shared.Inner.GetAsync(key))!.Value.ToArray());
        Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
        Assert.Equal(1, manager.GetStatistics().MemoryHits);
    }

    [Fact]
    public async Task A_put_memory_cannot_hold_is_read_back_before_its_write_reaches_the_tier()
    {
        using var gate = new SemaphoreSlim(0);
        var disk = new ControllableTier("disk") { PutGate = gate };
        await using var manager = new KvTierManager(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 16 }), [disk], Fast);
        var (key, blob) = ContainerBlob(9);
        await manager.PutAsync(key, blob);
        Assert.False(manager.Memory.TryPeek(key, out _));
        Assert.Equal(0, disk.Puts);
        Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
        Assert.True(await manager.ContainsAsync(key));
        gate.Release(16);
        await manager.FlushAsync();
        Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
    }

    [Fact]
    public async Task A_hit_below_is_promoted_into_memory_and_the_tiers_above()
    {
        var disk = new ControllableTier("disk");
        var shared = new ControllableTier("shared");
        var (key, blob) = ContainerBlob(2);
        await shared.Inner.PutAsync(key, blob);
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk, shared], Fast);
        Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
        await manager.FlushAsync();
        Assert.True(manager.Memory.TryPeek(key, out _));
        Assert.Equal(blob, (await disk.Inner.GetAsync(key))!.Value.ToArray());
        var stats = manager.GetStatistics();
        Assert.Equal((1L, 0L, 2L), (stats.Tiers[1].Hits, stats.Misses, stats.Promotions));
    }

    [Fact]
    public async Task A_corrupt_blob_below_is_deleted_there_and_the_next_tier_answers()
    {
        var disk = new ControllableTier("disk");
        var shared = new ControllableTier("shared");
        var (key, blob) = ContainerBlob(3);
        await disk.Inner.PutAsync(key, blob);
        await shared.Inner.PutAsync(key, blob);
        disk.Corrupt(key, blob.Length - 3);
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk, shared], Fast);
        Assert.Equal(blob, (await manager.GetAsync(key))!.Value.ToArray());
        Assert.Equal(1, manager.GetStatistics().CorruptRemoved);
        await manager.FlushAsync();
        // The promotion put the good copy back.
        Assert.Equal(blob, (await disk.Inner.GetAsync(key))!.Value.ToArray());
    }

    [Fact]
    public async Task A_corrupt_blob_in_the_only_tier_is_deleted_and_is_a_miss_through_the_container_store()
    {
        var disk = new ControllableTier("disk");
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast);
        var entry = ContainerTestData.Entry(seed: 9);
        var ns = new KvNamespace("alice", ContainerTestData.Model);
        var store = new ContainerKvStore(manager.For(ns), new KvContainerExpectation(ContainerTestData.Model, ContainerTestData.Tokenizer, 3, 2, 8));
        await store.PutAsync(entry);
        await manager.FlushAsync();
        var key = new TierKey(ns, entry.Key);
        await manager.Memory.RemoveAsync(key);
        disk.Corrupt(key, 40);
        Assert.Null(await store.GetAsync(entry.Key));
        Assert.False(await disk.Inner.ContainsAsync(key));
        Assert.Equal((1L, 1L), (manager.GetStatistics().CorruptRemoved, manager.GetStatistics().Misses));
    }

    [Fact]
    public async Task A_tier_that_goes_down_is_skipped_then_caught_up_with_what_was_written_and_removed_meanwhile()
    {
        var disk = new ControllableTier("disk");
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast);
        var (early, earlyBlob) = ContainerBlob(10);
        await manager.PutAsync(early, earlyBlob);
        await manager.FlushAsync();
        disk.Down = true;
        var written = new List<(TierKey, byte[])>();
        for (var i = 0; i < 20; i++)
        {
            var (key, blob) = ContainerBlob(100 + i);
            await manager.PutAsync(key, blob);
            Assert.NotNull(await manager.GetAsync(key));
            Assert.Null(await manager.GetAsync(Key(5000 + i)));
            written.Add((key, blob));
        }

        Assert.True(await manager.RemoveAsync(early));
        await WaitUntilAsync(() => manager.GetStatistics().Tiers[0].State == KvTierState.Down);
        disk.Down = false;
        await WaitUntilAsync(() => manager.GetStatistics().Tiers[0].State == KvTierState.Up);
        await manager.FlushAsync();
        foreach (var (key, blob) in written)
        {
            Assert.Equal(blob, (await disk.Inner.GetAsync(key))!.Value.ToArray());
        }

        Assert.False(await disk.Inner.ContainsAsync(early));
        var health = manager.GetStatistics().Tiers[0];
        Assert.Equal((1L, 0, 0L), (health.Outages, health.CatchUpPending, health.CatchUpLost));
    }

    [Fact]
    public async Task An_entry_evicted_from_memory_while_a_tier_was_down_is_caught_up_from_another_tier()
    {
        var disk = new ControllableTier("disk");
        var shared = new ControllableTier("shared");
        await using var manager = new KvTierManager(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 1 }), [disk, shared], Fast);
        shared.Down = true;
        var (key, blob) = ContainerBlob(11);
        await manager.PutAsync(key, blob);
        await manager.FlushAsync();
        Assert.False(manager.Memory.TryPeek(key, out _));
        shared.Down = false;
        await WaitUntilAsync(() => manager.GetStatistics().Tiers[1].State == KvTierState.Up);
        await manager.FlushAsync();
        Assert.Equal(blob, (await shared.Inner.GetAsync(key))!.Value.ToArray());
    }

    [Fact]
    public async Task A_slow_tier_is_marked_down_by_the_timeout_and_later_requests_keep_their_latency()
    {
        // The tier answers after 6 s and the timeout is 300 ms: the bounds below sit far from both, so a busy
        // machine (the solution's test classes run in parallel on 2 cores) cannot fail this on scheduling alone.
        var shared = new ControllableTier("shared") { Delay = TimeSpan.FromSeconds(6) };
        await using var manager = new KvTierManager(new HostMemoryTier(), [shared], Fast with { ProbeInterval = TimeSpan.FromSeconds(60) });
        var first = Stopwatch.StartNew();
        Assert.Null(await manager.GetAsync(Key(1)));
        Assert.InRange(first.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(4));
        Assert.Equal(KvTierState.Down, manager.GetStatistics().Tiers[0].State);
        var rest = Stopwatch.StartNew();
        for (var i = 0; i < 20; i++)
        {
            Assert.Null(await manager.GetAsync(Key(2 + i)));
            await manager.PutAsync(Key(100 + i), Bytes(100, i));
        }

        Assert.InRange(rest.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(4));
        Assert.Equal(20, manager.GetStatistics().Tiers[0].SkippedReads);
    }

    [Fact]
    public async Task A_full_write_queue_makes_writers_wait_and_drops_nothing()
    {
        var disk = new ControllableTier("disk") { PutGate = new SemaphoreSlim(0) };
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast with { WriteQueueCapacity = 2, OperationTimeout = TimeSpan.FromSeconds(30) });
        var puts = new List<Task>();
        for (var i = 0; i < 6; i++)
        {
            puts.Add(manager.PutAsync(Key(i), Bytes(100, i)).AsTask());
        }

        await Task.Delay(200);
        // One write is held inside the tier and two more are queued: the rest wait for room.
        Assert.True(puts.Count(t => !t.IsCompleted) >= 2, $"{puts.Count(t => !t.IsCompleted)} puts waiting");
        Assert.True(manager.GetStatistics().Tiers[0].QueuedWrites <= 3);
        disk.PutGate.Release(100);
        await Task.WhenAll(puts).WaitAsync(TimeSpan.FromSeconds(10));
        await manager.FlushAsync();
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(Bytes(100, i), (await disk.Inner.GetAsync(Key(i)))!.Value.ToArray());
        }
    }

    [Fact]
    public async Task The_byte_bound_of_the_queue_also_holds_writers_back()
    {
        var disk = new ControllableTier("disk") { PutGate = new SemaphoreSlim(0) };
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast with { WriteQueueBytes = 250, OperationTimeout = TimeSpan.FromSeconds(30) });
        var puts = Enumerable.Range(0, 4).Select(i => manager.PutAsync(Key(i), Bytes(100, i)).AsTask()).ToList();
        await Task.Delay(200);
        Assert.True(manager.GetStatistics().Tiers[0].QueuedBytes <= 250);
        Assert.Contains(puts, t => !t.IsCompleted);
        disk.PutGate.Release(100);
        await Task.WhenAll(puts).WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_remove_hides_the_lower_copy_at_once_and_a_queued_write_cannot_bring_it_back()
    {
        var disk = new ControllableTier("disk") { PutGate = new SemaphoreSlim(0) };
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast with { OperationTimeout = TimeSpan.FromSeconds(30) });
        await disk.Inner.PutAsync(Key(1), Bytes(10, 1));
        await manager.PutAsync(Key(1), Bytes(10, 2));
        Assert.True(await manager.RemoveAsync(Key(1)));
        Assert.Null(await manager.GetAsync(Key(1)));
        Assert.False(await manager.ContainsAsync(Key(1)));
        disk.PutGate.Release(100);
        await manager.FlushAsync();
        Assert.False(await disk.Inner.ContainsAsync(Key(1)));
        Assert.Null(await manager.GetAsync(Key(1)));
    }

    [Fact]
    public async Task Listing_unites_memory_and_the_tiers_per_namespace()
    {
        var disk = new ControllableTier("disk");
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast);
        await disk.Inner.PutAsync(Key(1, Alice), Bytes(5));
        await manager.PutAsync(Key(2, Alice), Bytes(5));
        await manager.PutAsync(Key(3, Bob), Bytes(5));
        await manager.FlushAsync();
        var alices = await manager.ListAsync(Alice).ToListAsync();
        Assert.Equal([Key(1, Alice), Key(2, Alice)], alices.OrderBy(k => k.Key.Id));
        Assert.Equal(3, (await manager.ListAsync().ToListAsync()).Count);
    }

    [Fact]
    public async Task A_tenant_never_reads_another_tenants_entry_through_the_stack()
    {
        var disk = new ControllableTier("disk");
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast);
        await manager.PutAsync(Key(1, Alice), Bytes(5));
        await manager.FlushAsync();
        Assert.Null(await manager.GetAsync(Key(1, Bob)));
        Assert.False(await manager.ContainsAsync(Key(1, Bob)));
        Assert.Null(await manager.For(Bob).GetAsync(Key(1).Key));
    }

    [Fact]
    public async Task Disposal_drains_queued_writes_into_the_lower_tiers()
    {
        var disk = new ControllableTier("disk");
        var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast with { OwnsTiers = false });
        for (var i = 0; i < 50; i++)
        {
            await manager.PutAsync(Key(i), Bytes(1000, i));
        }

        await manager.DisposeAsync();
        Assert.Equal(50, disk.Inner.Count);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await manager.GetAsync(Key(1)));
        await disk.DisposeAsync();
    }

    [Fact]
    public async Task Sixteen_concurrent_writers_and_readers_over_a_small_memory_budget_finish_and_lose_nothing()
    {
        var disk = new ControllableTier("disk");
        // Opaque blobs: verification off (it would rightly delete them as corrupt when read back from the tier).
        await using var manager = new KvTierManager(new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 16 * 1024 }), [disk], Fast with { WriteQueueCapacity = 8, VerifyReads = false });
        var tasks = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                var id = (w * 1000) + i;
                await manager.PutAsync(Key(id), Bytes(2048, id));
                Assert.True(manager.Memory.Bytes <= 16 * 1024);
                _ = await manager.GetAsync(Key((w * 1000) + (i / 2)));
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        await manager.FlushAsync();
        Assert.Equal((0, 0L), (manager.GetStatistics().Tiers[0].QueuedWrites, manager.GetStatistics().Tiers[0].Failures));
        Assert.Equal(1600, disk.Inner.Count);
        Assert.Equal(Bytes(2048, 15_042), (await manager.GetAsync(Key(15_042)))!.Value.ToArray());
    }

    [Fact]
    public async Task A_blob_that_is_not_a_container_is_treated_as_corrupt_when_read_from_below()
    {
        var disk = new ControllableTier("disk");
        await disk.Inner.PutAsync(Key(1), Bytes(64));
        await using var manager = new KvTierManager(new HostMemoryTier(), [disk], Fast);
        Assert.Null(await manager.GetAsync(Key(1)));
        Assert.False(await disk.Inner.ContainsAsync(Key(1)));
        Assert.Equal(1, manager.GetStatistics().CorruptRemoved);
    }

    [Fact]
    public async Task A_tier_with_its_own_codec_stores_entries_re_encoded_and_memory_keeps_them_as_written()
    {
        var disk = new ControllableTier("disk");
        var shared = new ControllableTier("shared");
        await using var manager = new KvTierManager(new HostMemoryTier(), [new KvLowerTier(disk, KvCodecSpec.Lz4), new KvLowerTier(shared, KvCodecSpec.CacheGen(2))], Fast);
        var entry = ContainerTestData.Entry(tokens: 32, headDim: 16, seed: 21);
        var key = new TierKey(Alice, entry.Key);
        var raw = KvContainerWriter.ToArray(entry, KvCodecSpec.Raw);
        await manager.PutAsync(key, raw);
        await manager.FlushAsync();
        Assert.True(manager.Memory.TryPeek(key, out var held));
        Assert.Equal(raw, held.ToArray());
        var onDisk = (await disk.Inner.GetAsync(key))!.Value;
        Assert.Equal(KvCodecSpec.Lz4, KvContainerReader.ReadHeader(onDisk.Span).Codec);
        var back = KvContainerReader.Read(onDisk);
        Assert.Equal(entry.Keys.ToArray(), back.Keys.ToArray());
        Assert.Equal(entry.Tokens, back.Tokens);
        var shared2 = (await shared.Inner.GetAsync(key))!.Value;
        Assert.Equal(KvCodecSpec.CacheGen(2), KvContainerReader.ReadHeader(shared2.Span).Codec);
        Assert.True(shared2.Length < raw.Length / 3);
    }

    [Fact]
    public async Task A_tier_codec_that_is_not_a_codec_is_refused()
    {
        await using var memory = new HostMemoryTier();
        var e = Assert.Throws<ArgumentException>(() => new KvTierManager(memory, [new KvLowerTier(new ControllableTier("disk"), new KvCodecSpec(KvCodecKind.CacheGen, 9))]));
        Assert.Contains("disk", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("OperationTimeout")]
    [InlineData("ProbeInterval")]
    [InlineData("WriteQueueCapacity")]
    [InlineData("WriteQueueBytes")]
    [InlineData("MaxCatchUpEntries")]
    public async Task A_bad_setting_is_refused_by_name(string setting)
    {
        var options = setting switch
        {
            "OperationTimeout" => new KvTierManagerOptions { OperationTimeout = TimeSpan.Zero },
            "ProbeInterval" => new KvTierManagerOptions { ProbeInterval = TimeSpan.FromSeconds(-1) },
            "WriteQueueCapacity" => new KvTierManagerOptions { WriteQueueCapacity = 0 },
            "WriteQueueBytes" => new KvTierManagerOptions { WriteQueueBytes = 0 },
            _ => new KvTierManagerOptions { MaxCatchUpEntries = -1 },
        };
        await using var memory = new HostMemoryTier();
        var e = Assert.Throws<ArgumentException>(() => new KvTierManager(memory, Array.Empty<IKvTier>(), options));
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(20), "the condition did not hold within 20 s");
            await Task.Delay(10);
        }
    }
}
