using KvFusion.Cache.Tiers;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>The byte budget: least recently used first, kept in RocksDB, never over, counted.</summary>
public sealed class RocksDbTierBudgetTests
{
    [Fact]
    public async Task Eviction_removes_the_least_recently_written_entry_first()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        for (var i = 1; i <= 3; i++)
        {
            await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
        }

        await tier.PutAsync(At(AliceA, 4), Bytes(100, 4));

        Assert.False(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.True(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.True(await tier.ContainsAsync(At(AliceA, 3)));
        Assert.True(await tier.ContainsAsync(At(AliceA, 4)));
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(1, stats.Evictions);
        Assert.Equal(300, stats.Bytes);
        Assert.Equal(3, stats.Entries);
        Assert.Equal(300, stats.ByteBudget);
    }

    [Fact]
    public async Task A_get_makes_an_entry_recently_used_so_the_next_oldest_is_evicted()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        for (var i = 1; i <= 3; i++)
        {
            await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
        }

        Assert.NotNull(await tier.GetAsync(At(AliceA, 1)));
        await tier.PutAsync(At(AliceA, 4), Bytes(100, 4));

        Assert.True(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.False(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.True(await tier.ContainsAsync(At(AliceA, 3)));
    }

    [Fact]
    public async Task The_order_is_shared_by_every_model_and_tenant()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        await tier.PutAsync(At(AliceB, 1), Bytes(100, 1));
        await tier.PutAsync(At(BobA, 1), Bytes(100, 2));
        await tier.PutAsync(At(AliceA, 1), Bytes(100, 3));
        await tier.GetAsync(At(AliceB, 1));

        await tier.PutAsync(At(AliceA, 2), Bytes(150, 4));

        Assert.True(await tier.ContainsAsync(At(AliceB, 1)));
        Assert.False(await tier.ContainsAsync(At(BobA, 1)));
        Assert.False(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.Equal(2, (await tier.GetStatisticsAsync()).Evictions);
    }

    [Fact]
    public async Task The_budget_is_never_exceeded_and_every_eviction_is_counted_while_reads_reorder_entries()
    {
        using var temp = new TempDirectory();
        const long budget = 10_000;
        await using var tier = Open(temp, budget: budget);
        var rng = new Random(5);
        long stored = 0;
        for (var i = 0; i < 200; i++)
        {
            var blob = Bytes(rng.Next(100, 3000), (byte)i);
            await tier.PutAsync(At(AliceA, i), blob);
            stored++;
            var stats = await tier.GetStatisticsAsync();
            Assert.True(stats.Bytes <= budget, $"{stats.Bytes} bytes after put {i}");
            Assert.True(await tier.ContainsAsync(At(AliceA, i)));
            // Reads in between move entries in the order while evictions take from its head.
            await tier.GetAsync(At(AliceA, rng.Next(0, i + 1)));
        }

        var end = await tier.GetStatisticsAsync();
        var listed = await ListAsync(tier);
        Assert.Equal(listed.Count, end.Entries);
        Assert.Equal(stored - end.Entries, end.Evictions);
        long bytes = 0;
        foreach (var key in listed)
        {
            bytes += (await tier.GetAsync(key))!.Value.Length;
        }

        Assert.Equal(end.Bytes, bytes);
    }

    [Fact]
    public async Task The_entry_being_written_is_never_evicted_even_when_it_is_the_oldest()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        for (var i = 1; i <= 3; i++)
        {
            await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
        }

        // Entry 1 is the least recently used; its bigger replacement must push out the others, not itself.
        await tier.PutAsync(At(AliceA, 1), Bytes(250, 9));

        Assert.Equal(Bytes(250, 9), (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
        Assert.False(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.False(await tier.ContainsAsync(At(AliceA, 3)));
        Assert.Equal(250, (await tier.GetStatisticsAsync()).Bytes);
    }

    [Fact]
    public async Task A_blob_larger_than_the_whole_budget_is_rejected_counted_and_leaves_no_stale_copy()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        await tier.PutAsync(At(AliceA, 1), Bytes(100, 1));
        await tier.PutAsync(At(AliceA, 2), Bytes(100, 2));

        await tier.PutAsync(At(AliceA, 1), Bytes(301, 3));

        Assert.False(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.True(await tier.ContainsAsync(At(AliceA, 2)));
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(1, stats.Rejections);
        Assert.Equal(0, stats.Evictions);
        Assert.Equal(100, stats.Bytes);
        Assert.Equal(1, stats.Entries);
    }

    [Fact]
    public async Task Sizes_and_the_access_order_are_found_again_after_reopening()
    {
        using var temp = new TempDirectory();
        await using (var tier = Open(temp, budget: 300))
        {
            for (var i = 1; i <= 3; i++)
            {
                await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
            }

            await tier.GetAsync(At(AliceA, 1));
        }

        await using var reopened = Open(temp, budget: 300);
        var stats = await reopened.GetStatisticsAsync();
        Assert.Equal(3, stats.Entries);
        Assert.Equal(300, stats.Bytes);

        await reopened.PutAsync(At(AliceA, 4), Bytes(100, 4));

        Assert.True(await reopened.ContainsAsync(At(AliceA, 1)));
        Assert.False(await reopened.ContainsAsync(At(AliceA, 2)));
        Assert.Equal(300, (await reopened.GetStatisticsAsync()).Bytes);
    }

    [Fact]
    public async Task Reopening_with_a_smaller_budget_evicts_the_least_recently_used_at_once()
    {
        using var temp = new TempDirectory();
        await using (var tier = Open(temp))
        {
            for (var i = 1; i <= 4; i++)
            {
                await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
            }
        }

        await using var smaller = Open(temp, budget: 250);
        var stats = await smaller.GetStatisticsAsync();

        Assert.Equal(200, stats.Bytes);
        Assert.Equal(2, stats.Evictions);
        Assert.Equal(new[] { At(AliceA, 3), At(AliceA, 4) }.ToHashSet(), (await ListAsync(smaller)).ToHashSet());
    }

    [Fact]
    public async Task Removing_entries_frees_their_bytes_in_the_budget()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, budget: 300);
        for (var i = 1; i <= 3; i++)
        {
            await tier.PutAsync(At(AliceA, i), Bytes(100, (byte)i));
        }

        await tier.RemoveAsync(At(AliceA, 1));
        await tier.PutAsync(At(AliceA, 4), Bytes(100, 4));

        Assert.True(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.Equal(0, (await tier.GetStatisticsAsync()).Evictions);
        Assert.Equal(new[] { At(AliceA, 2), At(AliceA, 3), At(AliceA, 4) }.ToHashSet(), (await ListAsync(tier)).ToHashSet());
    }
}
