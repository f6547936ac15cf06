using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>The RocksDB tier under <see cref="KvTierManager"/>, read and written through <see cref="ContainerKvStore"/>.</summary>
public sealed class RocksDbTierManagerTests
{
    private static readonly KvContainerExpectation Expected = new(ModelA, Tokenizer, 2, 2, 16);

    [Fact]
    public async Task An_entry_corrupted_in_RocksDB_is_detected_removed_from_it_and_a_miss_through_the_manager()
    {
        using var temp = new TempDirectory();
        var rocks = Open(temp);
        var entry = Entry(1);
        var healthy = Entry(2);
        var key = new TierKey(AliceA, entry.Key);
        await rocks.PutAsync(key, KvContainerWriter.ToArray(entry, Cache.Codecs.KvCodecSpec.Raw));
        await rocks.PutAsync(new TierKey(AliceA, healthy.Key), KvContainerWriter.ToArray(healthy, Cache.Codecs.KvCodecSpec.Raw));
        var damaged = rocks.ReadRaw(key)!;
        damaged[damaged.Length / 2] ^= 0x10;
        rocks.WriteRaw(key, damaged);

        // Memory starts empty, as after a restart: the read goes down to RocksDB.
        await using var manager = new KvTierManager(new HostMemoryTier(), [rocks], null, null);
        var store = new ContainerKvStore(manager.For(AliceA), Expected);

        Assert.Null(await store.GetAsync(entry.Key));

        Assert.False(await rocks.ContainsAsync(key));
        Assert.Null(await store.GetAsync(entry.Key));
        Assert.Equal(1, manager.GetStatistics().CorruptRemoved);
        Assert.False(await manager.Memory.ContainsAsync(key));
        Assert.NotNull(await store.GetAsync(healthy.Key));
        Assert.Equal([new TierKey(AliceA, healthy.Key)], await ListAsync(rocks));
    }

    [Fact]
    public async Task Entries_written_through_the_manager_reach_RocksDB_and_read_back_after_a_restart()
    {
        using var temp = new TempDirectory();
        var entries = Enumerable.Range(1, 5).Select(i => Entry(i)).ToArray();
        await using (var manager = new KvTierManager(new HostMemoryTier(), [Open(temp)], null, null))
        {
            var store = new ContainerKvStore(manager.For(AliceA), Expected);
            foreach (var entry in entries)
            {
                await store.PutAsync(entry);
            }

            await manager.FlushAsync();
        }

        await using var restarted = new KvTierManager(new HostMemoryTier(), [Open(temp)], null, null);
        var reader = new ContainerKvStore(restarted.For(AliceA), Expected);
        foreach (var entry in entries)
        {
            var back = await reader.GetAsync(entry.Key);
            Assert.NotNull(back);
            Assert.Equal(entry.Tokens, back.Tokens);
            Assert.True(entry.Keys.SequenceEqual(back.Keys));
        }

        Assert.Equal(0, reader.CorruptBlobsDropped);
        Assert.Equal(0, restarted.GetStatistics().CorruptRemoved);
    }
}
