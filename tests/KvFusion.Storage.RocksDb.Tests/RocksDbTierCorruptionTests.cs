using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>
/// The tier hands out what RocksDB holds, damaged or not; the container's checksums are what catch damage, and the
/// reader above the tier drops it (DESIGN.md "Container").
/// </summary>
public sealed class RocksDbTierCorruptionTests
{
    [Fact]
    public async Task Bytes_damaged_inside_RocksDB_are_handed_out_as_they_are_and_fail_verification()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var key = At(AliceA, 1);
        await tier.PutAsync(key, Container(1));
        var damaged = tier.ReadRaw(key)!;
        damaged[damaged.Length / 2] ^= 0x40;

        tier.WriteRaw(key, damaged);
        var back = await tier.GetAsync(key);

        Assert.Equal(damaged, back!.Value.ToArray());
        Assert.Throws<KvContainerException>(() => KvContainerReader.Verify(back.Value.Span));
    }

    [Fact]
    public async Task A_damaged_entry_read_through_ContainerKvStore_is_a_miss_removed_from_RocksDB()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var store = new ContainerKvStore(new NamespacedBlobStore(tier, AliceA), new KvContainerExpectation(ModelA, Tokenizer, 2, 2, 16));
        var entry = Entry(1);
        await store.PutAsync(entry);
        var key = new TierKey(AliceA, entry.Key);
        var damaged = tier.ReadRaw(key)!;
        damaged[^1] ^= 0x01;
        tier.WriteRaw(key, damaged);

        Assert.Null(await store.GetAsync(entry.Key));

        Assert.Equal(1, store.CorruptBlobsDropped);
        Assert.False(await tier.ContainsAsync(key));
        Assert.Empty(await ListAsync(tier));
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(0, stats.Entries);
        Assert.Equal(0, stats.Bytes);
    }
}
