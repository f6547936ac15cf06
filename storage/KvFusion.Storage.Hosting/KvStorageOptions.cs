using KvFusion.Cache.Tiers;
using KvFusion.Storage.Redis;
using KvFusion.Storage.RocksDb;

namespace KvFusion.Storage.Hosting;

/// <summary>
/// The storage stack's settings, bound from the <c>Storage</c> section of appsettings.json and from environment
/// variables (<c>KVFUSION_Storage__RocksDb__Path=/var/lib/kvfusion</c>). With nothing configured, entries go to
/// host memory and RocksDB under <c>./data</c>.
/// </summary>
public sealed class KvStorageOptions
{
    /// <summary>The configuration section these settings are bound from.</summary>
    public const string SectionName = "Storage";

    /// <summary>The tenant entries are stored for (each tenant's entries are apart from every other's).</summary>
    public string Tenant { get; set; } = KvNamespace.DefaultTenant;

    /// <summary>The codec entries are encoded with (raw, lz4, fp8, cachegen:1..3); default lossless lz4.</summary>
    public string Codec { get; set; } = "lz4";

    /// <summary>The tiers under host memory, in read order, comma-separated: <c>rocksdb</c>, <c>redis</c>, both, or <c>none</c>.</summary>
    public string Tiers { get; set; } = "rocksdb";

    /// <summary>
    /// A codec per lower tier, by tier name (<c>"TierCodecs": { "redis": "cachegen:2" }</c>): entries written down to
    /// that tier are re-encoded with it. A tier not named stores entries as written, with <see cref="Codec"/>.
    /// </summary>
    public Dictionary<string, string> TierCodecs { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Extra levels a lower tier keeps of every chunk, by tier name, comma-separated
    /// (<c>"TierLevels": { "redis": "cachegen:1,cachegen:3" }</c>): each is stored under its own level key, for the
    /// loading controller to pick by bandwidth. A tier not named keeps one level.
    /// </summary>
    public Dictionary<string, string> TierLevels { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Host memory.</summary>
    public HostMemoryTierOptions Memory { get; set; } = new();

    /// <summary>RocksDB on local disk (when <see cref="Tiers"/> names it).</summary>
    public RocksDbTierOptions RocksDb { get; set; } = new();

    /// <summary>Redis or Redis Cluster (when <see cref="Tiers"/> names it; <see cref="RedisTierOptions.Configuration"/> is then required).</summary>
    public RedisTierOptions Redis { get; set; } = new();

    /// <summary>The tier manager (timeouts, write-behind queue, probing).</summary>
    public KvTierManagerOptions Manager { get; set; } = new();
}
