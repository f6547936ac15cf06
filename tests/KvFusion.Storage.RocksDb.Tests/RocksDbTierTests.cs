using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using KvFusion.Storage.RocksDb;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>The <see cref="IKvTier"/> contract on a real RocksDB database in a temporary folder.</summary>
public sealed class RocksDbTierTests
{
    [Fact]
    public async Task A_put_blob_reads_back_byte_for_byte_and_verifies()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var blob = Container(1);

        await tier.PutAsync(At(AliceA, 1), blob);
        var back = await tier.GetAsync(At(AliceA, 1));

        Assert.NotNull(back);
        Assert.Equal(blob, back.Value.ToArray());
        KvContainerReader.Verify(back.Value.Span);
        Assert.Equal("rocksdb", tier.Name);
    }

    [Fact]
    public async Task A_second_put_replaces_the_blob_and_the_byte_count()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);

        await tier.PutAsync(At(AliceA, 1), Container(1, tokens: 8));
        var newer = Container(2, tokens: 20);
        await tier.PutAsync(At(AliceA, 1), newer);

        Assert.Equal(newer, (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(1, stats.Entries);
        Assert.Equal(newer.Length, stats.Bytes);
        Assert.Equal(2, stats.Puts);
    }

    [Fact]
    public async Task Remove_deletes_the_entry_and_says_whether_it_was_there()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        await tier.PutAsync(At(AliceA, 1), Container(1));

        Assert.True(await tier.RemoveAsync(At(AliceA, 1)));
        Assert.False(await tier.RemoveAsync(At(AliceA, 1)));
        Assert.False(await tier.RemoveAsync(At(AliceB, 1)));
        Assert.Null(await tier.GetAsync(At(AliceA, 1)));
        Assert.Empty(await ListAsync(tier));
        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(0, stats.Entries);
        Assert.Equal(0, stats.Bytes);
    }

    [Fact]
    public async Task Contains_is_true_only_for_stored_entries()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);

        Assert.False(await tier.ContainsAsync(At(AliceA, 1)));
        await tier.PutAsync(At(AliceA, 1), Container(1));

        Assert.True(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.False(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.False(await tier.ContainsAsync(At(AliceB, 1)));
    }

    [Fact]
    public async Task List_returns_the_keys_of_one_namespace_or_of_every_namespace()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        TierKey[] alice = [At(AliceA, 1), At(AliceA, 2), new(AliceA, new(Cache.Keys.CacheEntryKind.PrefixBlock, Key(3).Id, string.Empty)), new(AliceA, Key(4, "sink:system prompt/é"))];
        TierKey[] others = [At(BobA, 1), At(AliceB, 1)];
        foreach (var key in alice.Concat(others))
        {
            await tier.PutAsync(key, Container(5));
        }

        Assert.Equal(alice.ToHashSet(), (await ListAsync(tier, AliceA)).ToHashSet());
        Assert.Equal([At(BobA, 1)], await ListAsync(tier, BobA));
        Assert.Equal([At(AliceB, 1)], await ListAsync(tier, AliceB));
        Assert.Empty(await ListAsync(tier, new KvNamespace("carol", ModelA)));
        var all = await ListAsync(tier);
        Assert.Equal(6, all.Count);
        Assert.Equal(alice.Concat(others).ToHashSet(), all.ToHashSet());
    }

    [Fact]
    public async Task List_goes_through_more_keys_than_fit_in_one_page()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var keys = Enumerable.Range(0, 2500).Select(i => At(AliceA, i)).ToArray();
        foreach (var key in keys)
        {
            await tier.PutAsync(key, Bytes(16, 1));
        }

        var listed = await ListAsync(tier, AliceA);

        Assert.Equal(keys.Length, listed.Count);
        Assert.Equal(keys.ToHashSet(), listed.ToHashSet());
    }

    [Fact]
    public async Task List_skips_a_stored_key_it_cannot_parse_and_logs_a_warning()
    {
        using var temp = new TempDirectory();
        await using (var tier = Open(temp))
        {
            await tier.PutAsync(At(AliceA, 1), Bytes(10, 1));
        }

        // A key no tier writes, put straight into the metadata family.
        var path = temp.Combine("db");
        var families = new RocksDbSharp.ColumnFamilies(new RocksDbSharp.ColumnFamilyOptions());
        foreach (var name in RocksDbSharp.RocksDb.ListColumnFamilies(new RocksDbSharp.DbOptions(), path).Where(n => n != "default"))
        {
            families.Add(name, new RocksDbSharp.ColumnFamilyOptions());
        }

        using (var db = RocksDbSharp.RocksDb.Open(new RocksDbSharp.DbOptions(), path, families))
        {
            db.Put(System.Text.Encoding.UTF8.GetBytes($"{ModelA}\0alice/x/not-an-entry"), new byte[] { 1 }, db.GetColumnFamily("meta"), null);
        }

        var log = new ListLogger<RocksDbTier>();
        await using var reopened = new RocksDbTier(new RocksDbTierOptions { Path = path }, log);

        Assert.Equal([At(AliceA, 1)], await ListAsync(reopened));
        Assert.Equal([At(AliceA, 1)], await ListAsync(reopened, AliceA));
        Assert.Contains(log.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning && e.Message.Contains("cannot parse", StringComparison.Ordinal));
        Assert.Equal(1, (await reopened.GetStatisticsAsync()).Entries);
    }

    [Fact]
    public async Task Tenants_with_the_same_key_each_read_their_own_blob()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var alices = Container(1);
        var bobs = Container(2);

        await tier.PutAsync(At(AliceA, 1), alices);
        await tier.PutAsync(At(BobA, 1), bobs);

        Assert.Equal(alices, (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
        Assert.Equal(bobs, (await tier.GetAsync(At(BobA, 1)))!.Value.ToArray());
        Assert.True(await tier.RemoveAsync(At(BobA, 1)));
        Assert.Equal(alices, (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
    }

    [Fact]
    public async Task Another_tenants_entry_reads_exactly_like_one_never_stored()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        await tier.PutAsync(At(AliceA, 1), Container(1));

        // Bob asks for Alice's key and for a key nobody stored: every answer is the same.
        foreach (var key in new[] { At(BobA, 1), At(BobA, 99) })
        {
            Assert.Null(await tier.GetAsync(key));
            Assert.False(await tier.ContainsAsync(key));
            Assert.False(await tier.RemoveAsync(key));
        }

        Assert.Empty(await ListAsync(tier, BobA));
        Assert.NotNull(await tier.GetAsync(At(AliceA, 1)));
    }

    [Fact]
    public async Task Two_models_are_kept_in_two_column_families()
    {
        using var temp = new TempDirectory();
        var a = Container(1);
        var b = Container(2, model: ModelB);
        await using (var tier = Open(temp))
        {
            await tier.PutAsync(At(AliceA, 1), a);
            await tier.PutAsync(At(AliceB, 1), b);
            Assert.Equal(a, (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
            Assert.Equal(b, (await tier.GetAsync(At(AliceB, 1)))!.Value.ToArray());
        }

        var families = RocksDbSharp.RocksDb.ListColumnFamilies(new RocksDbSharp.DbOptions(), temp.Combine("db")).ToHashSet();
        Assert.Contains("m-" + ModelA, families);
        Assert.Contains("m-" + ModelB, families);
        Assert.Contains("meta", families);
        Assert.Contains("lru", families);
    }

    [Fact]
    public async Task A_32_MB_blob_round_trips()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        // 2 layers x 2 heads x 4096 tokens x 512 dims, K and V in fp16: 32 MiB and a header.
        var blob = Container(3, tokens: 4096, headDim: 512);
        Assert.True(blob.Length > 32 << 20);

        await tier.PutAsync(At(AliceA, 3), blob);
        var back = await tier.GetAsync(At(AliceA, 3));

        Assert.True(blob.AsSpan().SequenceEqual(back!.Value.Span));
        KvContainerReader.Verify(back.Value.Span);
    }

    [Fact]
    public async Task A_blob_over_MaxValueBytes_is_refused_by_put_naming_the_setting()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp, maxValueBytes: 1000);

        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await tier.PutAsync(At(AliceA, 1), Bytes(1001, 1)));

        Assert.Contains(nameof(RocksDbTierOptions.MaxValueBytes), e.Message, StringComparison.Ordinal);
        Assert.False(await tier.ContainsAsync(At(AliceA, 1)));
    }

    [Fact]
    public async Task A_stored_value_over_MaxValueBytes_is_a_KvBlobException_on_get()
    {
        using var temp = new TempDirectory();
        await using (var tier = Open(temp))
        {
            await tier.PutAsync(At(AliceA, 1), Bytes(5000, 1));
        }

        await using var small = Open(temp, maxValueBytes: 4096);
        var e = await Assert.ThrowsAsync<KvBlobException>(async () => await small.GetAsync(At(AliceA, 1)));
        Assert.Contains(nameof(RocksDbTierOptions.MaxValueBytes), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Statistics_count_hits_misses_and_puts()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        await tier.PutAsync(At(AliceA, 1), Bytes(100, 1));
        await tier.PutAsync(At(AliceA, 2), Bytes(50, 2));
        await tier.GetAsync(At(AliceA, 1));
        await tier.GetAsync(At(AliceA, 1));
        await tier.GetAsync(At(AliceA, 3));
        await tier.GetAsync(At(AliceB, 3));

        var stats = await tier.GetStatisticsAsync();

        Assert.Equal("rocksdb", stats.Tier);
        Assert.Equal(2, stats.Entries);
        Assert.Equal(150, stats.Bytes);
        Assert.Equal(2, stats.Hits);
        Assert.Equal(2, stats.Misses);
        Assert.Equal(2, stats.Puts);
        Assert.Equal(0, stats.Evictions);
        Assert.Equal(0, stats.ByteBudget);
    }

    [Fact]
    public async Task Concurrent_readers_and_writers_leave_consistent_entries_and_totals()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 60; i++)
            {
                var key = At(AliceA, i % 20);
                switch ((w + i) % 4)
                {
                    case 0:
                    case 1:
                        await tier.PutAsync(key, Container(i % 20, tokens: 4 + (w % 3)));
                        break;
                    case 2:
                        if (await tier.GetAsync(key) is { } blob)
                        {
                            KvContainerReader.Verify(blob.Span);
                        }

                        break;
                    default:
                        await tier.RemoveAsync(key);
                        break;
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        var listed = await ListAsync(tier);
        long bytes = 0;
        foreach (var key in listed)
        {
            var blob = await tier.GetAsync(key);
            KvContainerReader.Verify(blob!.Value.Span);
            bytes += blob.Value.Length;
        }

        var stats = await tier.GetStatisticsAsync();
        Assert.Equal(listed.Count, stats.Entries);
        Assert.Equal(bytes, stats.Bytes);
    }

    [Fact]
    public async Task A_cancelled_put_or_remove_changes_nothing()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        await tier.PutAsync(At(AliceA, 1), Bytes(10, 1));
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await tier.PutAsync(At(AliceA, 2), Bytes(10, 2), cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await tier.RemoveAsync(At(AliceA, 1), cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await tier.GetAsync(At(AliceA, 1), cancelled.Token));

        Assert.True(await tier.ContainsAsync(At(AliceA, 1)));
        Assert.False(await tier.ContainsAsync(At(AliceA, 2)));
        Assert.Equal(1, (await tier.GetStatisticsAsync()).Entries);
    }

    [Fact]
    public async Task Probe_answers_on_an_open_tier()
    {
        using var temp = new TempDirectory();
        await using var tier = Open(temp);
        await tier.ProbeAsync();
    }

    [Fact]
    public async Task Every_operation_after_dispose_throws_ObjectDisposedException()
    {
        using var temp = new TempDirectory();
        var tier = Open(temp);
        await tier.PutAsync(At(AliceA, 1), Bytes(10, 1));
        await tier.DisposeAsync();
        await tier.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.GetAsync(At(AliceA, 1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.PutAsync(At(AliceA, 1), Bytes(10, 1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.RemoveAsync(At(AliceA, 1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.ContainsAsync(At(AliceA, 1)));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.ProbeAsync());
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await tier.GetStatisticsAsync());
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await ListAsync(tier));
    }

    [Fact]
    public async Task A_folder_that_cannot_hold_a_database_is_unavailable_naming_the_tier_and_the_cause()
    {
        using var temp = new TempDirectory();
        var file = temp.Combine("not-a-folder");
        await File.WriteAllTextAsync(file, "x");

        var e = Assert.Throws<KvTierUnavailableException>(() => new RocksDbTier(new RocksDbTierOptions { Path = file }));

        Assert.Contains("rocksdb", e.Message, StringComparison.Ordinal);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.InnerException);
    }

    [Fact]
    public async Task Writes_to_a_database_whose_folder_was_deleted_fail_as_unavailable_naming_the_tier()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("db");
        await using var tier = new RocksDbTier(new RocksDbTierOptions { Path = path, WriteBufferBytes = 1 << 20, BlobFileThresholdBytes = 0 });
        await tier.PutAsync(At(AliceA, 0), Bytes(10, 0));
        Directory.Delete(path, recursive: true);

        // Filling the memtable makes RocksDB switch to a new log file, which it cannot create in a missing folder.
        var e = await Assert.ThrowsAsync<KvTierUnavailableException>(async () =>
        {
            for (var i = 1; i <= 64; i++)
            {
                await tier.PutAsync(At(AliceA, i), Bytes(1 << 20, (byte)i));
            }
        });

        Assert.Contains("rocksdb", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.IsType<RocksDbSharp.RocksDbException>(e.InnerException);
    }

    [Fact]
    public async Task A_database_already_open_is_unavailable_to_a_second_tier()
    {
        using var temp = new TempDirectory();
        await using var first = Open(temp);

        var e = Assert.Throws<KvTierUnavailableException>(() => Open(temp));

        Assert.Contains("rocksdb", e.Message, StringComparison.Ordinal);
        Assert.Contains("lock", e.Message, StringComparison.OrdinalIgnoreCase);
    }
}
