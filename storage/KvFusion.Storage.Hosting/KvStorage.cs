using KvFusion.Cache.Codecs;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Redis;
using KvFusion.Storage.RocksDb;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvFusion.Storage.Hosting;

/// <summary>
/// The storage stack opened from <see cref="KvStorageOptions"/>: host memory over the configured lower tiers, under
/// one <see cref="KvTierManager"/>. Every model and tenant is a namespace of the same stack; <see cref="CreateStore"/>
/// gives the <see cref="IKvStore"/> a fusion engine reads and writes for one model. Disposing drains the write-behind
/// queues and closes the tiers.
/// </summary>
public sealed class KvStorage : IAsyncDisposable
{
    private KvStorage(KvStorageOptions options, KvTierManager manager, KvCodecSpec codec, LoadCostModel costs, ILoggerFactory loggers)
    {
        Options = options;
        Manager = manager;
        Codec = codec;
        CostModel = costs;
        Loggers = loggers;
    }

    /// <summary>What reads and decodes cost on this machine, measured from the requests as they run (the loading controller plans with it).</summary>
    public LoadCostModel CostModel { get; }

    /// <summary>The settings it was opened with.</summary>
    public KvStorageOptions Options { get; }

    /// <summary>The tier manager (statistics, health, flushing).</summary>
    public KvTierManager Manager { get; }

    /// <summary>The codec entries are encoded with.</summary>
    public KvCodecSpec Codec { get; }

    private ILoggerFactory Loggers { get; }

    /// <summary>Opens the tiers <paramref name="options"/> name (RocksDB creates its folder; Redis connects, and comes up later if it is down now).</summary>
    /// <exception cref="OptionsValidationException">A setting is invalid; the message names each one.</exception>
    public static async Task<KvStorage> OpenAsync(KvStorageOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new KvStorageOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(KvStorageOptions.SectionName, typeof(KvStorageOptions), result.Failures);
        }

        var loggers = loggerFactory ?? NullLoggerFactory.Instance;
        var lower = new List<KvLowerTier>();
        try
        {
            foreach (var kind in KvStorageOptionsValidator.ParseTiers(options.Tiers))
            {
                IKvTier tier = kind switch
                {
                    KvStorageTierKind.RocksDb => new RocksDbTier(options.RocksDb, loggers.CreateLogger<RocksDbTier>()),
                    _ => await RedisTier.ConnectAsync(options.Redis, loggers.CreateLogger<RedisTier>(), cancellationToken).ConfigureAwait(false),
                };
                lower.Add(new KvLowerTier(tier, CodecOf(options, kind), LevelsOf(options, kind)));
            }
        }
        catch
        {
            foreach (var tier in lower)
            {
                await tier.Tier.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        var memory = new HostMemoryTier(options.Memory, null, loggers.CreateLogger<HostMemoryTier>());
        var costs = new LoadCostModel();
        var manager = new KvTierManager(memory, lower, options.Manager with { CostModel = costs }, loggers.CreateLogger<KvTierManager>());
        return new KvStorage(options, manager, KvCodecSpec.Parse(options.Codec), costs, loggers);
    }

    private static KvCodecSpec? CodecOf(KvStorageOptions options, KvStorageTierKind kind)
    {
        foreach (var (tier, codec) in options.TierCodecs)
        {
            if (string.Equals(tier, kind.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                return KvCodecSpec.Parse(codec);
            }
        }

        return null;
    }

    private static List<KvCodecSpec> LevelsOf(KvStorageOptions options, KvStorageTierKind kind)
    {
        var levels = new List<KvCodecSpec>();
        foreach (var (tier, list) in options.TierLevels)
        {
            if (string.Equals(tier, kind.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                foreach (var level in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    levels.Add(KvCodecSpec.Parse(level));
                }
            }
        }

        return levels;
    }

    /// <summary>Opens the stack from <see cref="IOptions{TOptions}"/> (dependency injection).</summary>
    public static Task<KvStorage> OpenAsync(IOptions<KvStorageOptions> options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OpenAsync(options.Value, loggerFactory, cancellationToken);
    }

    /// <summary>The namespace of <paramref name="model"/>'s entries for the configured tenant (or <paramref name="tenant"/>).</summary>
    public KvNamespace NamespaceOf(TransformerModel model, string? tenant = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new KvNamespace(tenant ?? Options.Tenant, model.Fingerprint.Model);
    }

    /// <summary>The store of <paramref name="model"/>'s entries, encoded with the configured codec.</summary>
    public ContainerKvStore CreateStore(TransformerModel model, string? tenant = null, KvCodecProfiles? profiles = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var storeOptions = new ContainerKvStoreOptions { Codec = Codec, Profiles = profiles ?? KvCodecProfiles.None, CostModel = CostModel };
        return ContainerKvStore.ForModel(model, Manager.For(NamespaceOf(model, tenant)), storeOptions, Loggers.CreateLogger<ContainerKvStore>());
    }

    /// <summary>
    /// What the loading controller chooses from: the first lower tier (memory misses go there; host memory when there
    /// is none), the codec of a chunk's own entry in it and the levels <see cref="KvStorageOptions.TierLevels"/> keeps
    /// there, priced with <see cref="CostModel"/>; <paramref name="codecKl"/> is the KL each lossy codec adds.
    /// </summary>
    public LoadingOptions LoadingFor(IReadOnlyDictionary<KvCodecSpec, double> codecKl)
    {
        ArgumentNullException.ThrowIfNull(codecKl);
        var tiers = KvStorageOptionsValidator.ParseTiers(Options.Tiers);
        if (tiers.Count == 0 || Manager.LowerTiers.Count == 0)
        {
            return new LoadingOptions { Tier = Manager.Memory.Name, StoredCodec = Codec, CodecKl = codecKl };
        }

        return new LoadingOptions
        {
            Tier = Manager.LowerTiers[0].Name,
            StoredCodec = CodecOf(Options, tiers[0]) ?? Codec,
            Levels = LevelsOf(Options, tiers[0]),
            CodecKl = codecKl,
        };
    }

    /// <summary>Waits for queued writes to reach the lower tiers.</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default) => Manager.FlushAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Manager.DisposeAsync();
}
