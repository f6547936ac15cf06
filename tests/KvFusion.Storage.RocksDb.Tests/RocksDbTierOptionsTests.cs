using KvFusion.Storage.RocksDb;

namespace KvFusion.Storage.RocksDb.Tests;

/// <summary>Each bad setting is refused with a message that names it.</summary>
public sealed class RocksDbTierOptionsTests
{
    public static TheoryData<string, RocksDbTierOptions> BadOptions => new()
    {
        { nameof(RocksDbTierOptions.Path), new RocksDbTierOptions { Path = "" } },
        { nameof(RocksDbTierOptions.Path), new RocksDbTierOptions { Path = "  " } },
        { nameof(RocksDbTierOptions.Path), new RocksDbTierOptions { Path = "a\0b" } },
        { nameof(RocksDbTierOptions.ByteBudget), new RocksDbTierOptions { ByteBudget = -1 } },
        { nameof(RocksDbTierOptions.MaxValueBytes), new RocksDbTierOptions { MaxValueBytes = 0 } },
        { nameof(RocksDbTierOptions.WriteBufferCount), new RocksDbTierOptions { WriteBufferCount = 1 } },
        { nameof(RocksDbTierOptions.WriteBufferCount), new RocksDbTierOptions { WriteBufferCount = 17 } },
        { nameof(RocksDbTierOptions.MaxValueBytes), new RocksDbTierOptions { MaxValueBytes = long.MaxValue } },
        { nameof(RocksDbTierOptions.BlockCacheBytes), new RocksDbTierOptions { BlockCacheBytes = -1 } },
        { nameof(RocksDbTierOptions.BlobFileThresholdBytes), new RocksDbTierOptions { BlobFileThresholdBytes = -1 } },
        { nameof(RocksDbTierOptions.WriteBufferBytes), new RocksDbTierOptions { WriteBufferBytes = 1000 } },
        { nameof(RocksDbTierOptions.MaxBackgroundJobs), new RocksDbTierOptions { MaxBackgroundJobs = 0 } },
        { nameof(RocksDbTierOptions.MaxBackgroundJobs), new RocksDbTierOptions { MaxBackgroundJobs = 1000 } },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void A_bad_setting_is_refused_naming_it(string setting, RocksDbTierOptions options)
    {
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);

        var open = Assert.Throws<ArgumentException>(() => new RocksDbTier(options));
        Assert.Contains(setting, open.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_valid_and_store_under_data_with_the_log_unsynced_and_no_budget()
    {
        var options = new RocksDbTierOptions();

        options.Validate();

        Assert.Equal("./data", options.Path);
        Assert.Equal(0, options.ByteBudget);
        Assert.False(options.SyncWrites);
    }

    [Fact]
    public async Task A_tier_opened_from_IOptions_uses_those_options()
    {
        using var temp = new TempDirectory();
        var options = new RocksDbTierOptions { Path = temp.Combine("db"), ByteBudget = 1234 };

        await using var tier = new RocksDbTier(Microsoft.Extensions.Options.Options.Create(options));

        Assert.Equal(temp.Combine("db"), tier.DatabasePath);
        Assert.Equal(1234, (await tier.GetStatisticsAsync()).ByteBudget);
    }
}
