using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvFusion.Storage.Hosting.Tests;

public sealed class KvStorageConfigurationTests
{
    [Fact]
    public void With_nothing_configured_entries_go_to_memory_over_rocksdb_under_data_as_lz4()
    {
        var options = KvStorageConfiguration.Bind(new ConfigurationBuilder().Build());
        Assert.Equal("rocksdb", options.Tiers);
        Assert.Equal("./data", options.RocksDb.Path);
        Assert.Equal("lz4", options.Codec);
        Assert.Equal(KvNamespace.DefaultTenant, options.Tenant);
        Assert.Equal(HostMemoryEvictionPolicy.CostAware, options.Memory.EvictionPolicy);
    }

    [Fact]
    public void Appsettings_then_environment_then_overrides_each_win_over_the_one_before()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.Combine("appsettings.json"), """{ "Storage": { "Tenant": "from-file", "Codec": "raw", "Memory": { "ByteBudget": 1000 } } }""");
        Environment.SetEnvironmentVariable("KVFUSION_Storage__Codec", "fp8");
        try
        {
            var options = KvStorageConfiguration.Bind(KvStorageConfiguration.Build(dir.Path, [new("Storage:Tenant", "from-option")]));
            Assert.Equal("from-option", options.Tenant);
            Assert.Equal("fp8", options.Codec);
            Assert.Equal(1000, options.Memory.ByteBudget);
        }
        finally
        {
            Environment.SetEnvironmentVariable("KVFUSION_Storage__Codec", null);
        }
    }

    [Theory]
    [InlineData("Storage:Memory:ByteBudget", "0", "Storage:Memory:ByteBudget")]
    [InlineData("Storage:Manager:WriteQueueCapacity", "0", "Storage:Manager:WriteQueueCapacity")]
    [InlineData("Storage:RocksDb:ByteBudget", "-1", "Storage:RocksDb:ByteBudget")]
    [InlineData("Storage:Tiers", "rocksdb,rocksdb", "Storage:Tiers")]
    [InlineData("Storage:Codec", "cachegen:9", "Storage:Codec")]
    [InlineData("Storage:Tenant", "UPPER", "Storage:Tenant")]
    [InlineData("Storage:Memory:TimeToLive", "yesterday", "Storage:Memory:TimeToLive")]
    [InlineData("Storage:Memory:Budget", "1", "Budget")]
    [InlineData("Storage:TierCodecs:redis", "lz4", "Storage:TierCodecs:redis")]
    [InlineData("Storage:TierCodecs:rocksdb", "gzip", "Storage:TierCodecs:rocksdb")]
    [InlineData("Storage:TierLevels:rocksdb", "cachegen:1,cachegen:9", "Storage:TierLevels:rocksdb")]
    [InlineData("Storage:TierLevels:redis", "cachegen:1", "Storage:TierLevels:redis")]
    public void A_bad_setting_fails_naming_its_path(string key, string value, string named)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();
        var e = Assert.Throws<OptionsValidationException>(() => KvStorageConfiguration.Bind(configuration));
        Assert.Contains(named, string.Join(" ", e.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public void Redis_named_as_a_tier_needs_its_servers()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Storage:Tiers", "rocksdb,redis")]).Build();
        var e = Assert.Throws<OptionsValidationException>(() => KvStorageConfiguration.Bind(configuration));
        Assert.Contains("Storage:Redis:Configuration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dependency_injection_validates_the_options_when_they_are_first_used()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Storage:Memory:ByteBudget", "0")]).Build();
        using var services = new ServiceCollection().AddKvFusionStorageOptions(configuration).BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<KvStorageOptions>>().Value);
        Assert.Contains("Storage:Memory:ByteBudget", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_opened_stack_stores_entries_in_rocksdb_and_finds_them_after_reopening()
    {
        using var dir = new TempDirectory();
        var options = new KvStorageOptions { RocksDb = new() { Path = dir.Combine("data") } };
        var key = new TierKey(new KvNamespace("default", "00ab"), new CacheKey(CacheEntryKind.Chunk, "0123", "sink:bos"));
        var blob = new byte[] { 1, 2, 3 };
        await using (var storage = await KvStorage.OpenAsync(options))
        {
            await storage.Manager.PutAsync(key, blob);
            await storage.FlushAsync();
        }

        await using var again = await KvStorage.OpenAsync(options);
        Assert.Equal(blob, (await again.Manager.LowerTiers[0].GetAsync(key))!.Value.ToArray());
    }

    [Fact]
    public async Task Opening_with_invalid_options_names_the_setting_and_opens_nothing()
    {
        using var dir = new TempDirectory();
        var options = new KvStorageOptions { Memory = new() { ByteBudget = -1 }, RocksDb = new() { Path = dir.Combine("data") } };
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => KvStorage.OpenAsync(options));
        Assert.Contains("Storage:Memory:ByteBudget", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.Combine("data")));
    }

    [Fact]
    public async Task A_tier_with_levels_stores_each_chunk_at_every_level_under_its_level_key()
    {
        using var dir = new TempDirectory();
        var options = new KvStorageOptions { RocksDb = new() { Path = dir.Combine("data") }, TierLevels = { ["rocksdb"] = "cachegen:1, fp8" } };
        var entry = KvTestEntries.Random(3, tokens: 40);
        var ns = new KvNamespace("default", KvTestEntries.Model);
        await using var storage = await KvStorage.OpenAsync(options);
        var other = KvTestEntries.Random(4, tokens: 90);
        await storage.Manager.PutAsync(new TierKey(ns, entry.Key), KvTestEntries.RawContainer(entry));
        await storage.Manager.PutAsync(new TierKey(ns, other.Key), KvTestEntries.RawContainer(other));
        await storage.FlushAsync();

        var rocks = storage.Manager.LowerTiers[0];
        foreach (var level in new[] { KvCodecSpec.CacheGen(1), KvCodecSpec.Fp8 })
        {
            var levelKey = KvStoredLevels.At(entry.Key, level);
            var blob = (await rocks.GetAsync(new TierKey(ns, levelKey)))!.Value;
            Assert.Equal(level, KvContainerReader.ReadHeader(blob.Span).Codec);
            var decoded = KvContainerReader.Read(blob);
            Assert.Equal(levelKey, decoded.Key);
            Assert.Equal(entry.Tokens, decoded.Tokens);
            Assert.True(KvStoredLevels.TryParse(levelKey, out var chunk, out var parsed) && chunk == entry.Key && parsed == level);
            Assert.Equal(2, storage.CostModel.StoredSize(level)!.Value.Samples);
        }

        await storage.Manager.RemoveAsync(new TierKey(ns, entry.Key));
        await storage.FlushAsync();
        Assert.Null(await rocks.GetAsync(new TierKey(ns, KvStoredLevels.At(entry.Key, KvCodecSpec.Fp8))));
    }
}
