using KvFusion.Storage.RocksDb;
using static KvFusion.Storage.RocksDb.Tests.TestData;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>Gets read values through a pinnable slice, wherever RocksDB holds them: the memtable right after a put,
/// table files and blob files after a reopen (recovery flushes the log), in-tree and blob-file values alike.</summary>
public sealed class RocksDbReadPathTests
{
    // Around the 64 KiB blob threshold, and one value over a 1 MiB memtable so it is flushed while the tier is open.
    public static TheoryData<int> Lengths => new() { 0, 1, 100, (64 << 10) - 1, 64 << 10, 300_000, 3 << 20 };

    [Theory]
    [MemberData(nameof(Lengths))]
    public async Task A_value_reads_back_exactly_from_the_memtable_and_after_a_reopen(int length)
    {
        using var temp = new TempDirectory();
        var options = new RocksDbTierOptions { Path = temp.Combine("db"), WriteBufferBytes = 1 << 20 };
        var value = new byte[length];
        new Random(length).NextBytes(value);
        await using (var tier = new RocksDbTier(options))
        {
            await tier.PutAsync(At(AliceA, 1), value);
            Assert.Equal(value, (await tier.GetAsync(At(AliceA, 1)))!.Value.ToArray());
            Assert.Null(await tier.GetAsync(At(AliceA, 2)));
        }

        await using var reopened = new RocksDbTier(options);
        Assert.Equal(value, (await reopened.GetAsync(At(AliceA, 1)))!.Value.ToArray());
        Assert.Null(await reopened.GetAsync(At(AliceA, 2)));
    }
}
