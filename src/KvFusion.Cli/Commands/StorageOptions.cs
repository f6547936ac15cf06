using System.CommandLine;
using KvFusion.Storage.Hosting;
using KvFusion.Storage.Redis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvFusion.Cli.Commands;

/// <summary>
/// The <c>--store</c> and <c>--tenant</c> options, and the storage stack they open: appsettings.json in the current
/// folder, then <c>KVFUSION_</c> environment variables, then these options (see <see cref="KvStorageConfiguration"/>).
/// </summary>
internal static class StorageOptions
{
    public static Option<string?> Store() => new("--store")
    {
        Description = "Where entries are stored: a folder (RocksDB; default: the configured tiers, else ./data) or redis://HOST:PORT[,HOST:PORT...] (Redis or Redis Cluster).",
    };

    public static Option<string?> Tenant() => new("--tenant") { Description = "The tenant whose entries these are (default: the configured one, else 'default')." };

    /// <summary>The settings after applying <paramref name="store"/> and <paramref name="tenant"/> over the configuration.</summary>
    /// <exception cref="CliException">A setting or option is invalid; the message names it.</exception>
    public static KvStorageOptions Resolve(string? store, string? tenant)
    {
        try
        {
            return KvStorageConfiguration.Bind(KvStorageConfiguration.Build(null, Overrides(store, tenant)));
        }
        catch (OptionsValidationException e)
        {
            throw new CliException("invalid storage settings: " + string.Join(" ", e.Failures));
        }
    }

    /// <summary>The configuration keys <paramref name="store"/> and <paramref name="tenant"/> set (section <c>Storage</c>).</summary>
    /// <exception cref="CliException">The store is neither a folder nor a redis:// address.</exception>
    public static Dictionary<string, string?> Overrides(string? store, string? tenant)
    {
        var overrides = new Dictionary<string, string?>(StringComparer.Ordinal);
        const string root = KvStorageOptions.SectionName;
        if (store is not null)
        {
            if (RedisTierOptions.IsRedisUri(store))
            {
                RedisTierOptions parsed;
                try
                {
                    parsed = RedisTierOptions.ParseUri(store);
                }
                catch (ArgumentException e)
                {
                    throw new CliException($"--store: {e.Message}");
                }

                overrides[$"{root}:Tiers"] = "redis";
                overrides[$"{root}:Redis:Configuration"] = parsed.Configuration;
            }
            else if (string.IsNullOrWhiteSpace(store))
            {
                throw new CliException("--store: give a folder or a redis:// address.");
            }
            else
            {
                overrides[$"{root}:Tiers"] = "rocksdb";
                overrides[$"{root}:RocksDb:Path"] = store;
            }
        }

        if (tenant is not null)
        {
            overrides[$"{root}:Tenant"] = tenant;
        }

        return overrides;
    }

    /// <summary>Opens the stack; a tier that cannot be opened is a <see cref="CliException"/> naming it.</summary>
    public static async Task<KvStorage> OpenAsync(string? store, string? tenant, CancellationToken cancellationToken)
    {
        var options = Resolve(store, tenant);
        try
        {
            return await KvStorage.OpenAsync(options, CommonOptions.Logs, cancellationToken).ConfigureAwait(false);
        }
        catch (OptionsValidationException e)
        {
            throw new CliException("invalid storage settings: " + string.Join(" ", e.Failures));
        }
    }

    /// <summary>Where the entries are, for messages: the RocksDB folder and/or the Redis servers.</summary>
    public static string Describe(KvStorageOptions options)
    {
        var parts = new List<string>();
        foreach (var kind in KvStorageOptionsValidator.ParseTiers(options.Tiers))
        {
            parts.Add(kind == KvStorageTierKind.RocksDb ? $"rocksdb {Path.GetFullPath(options.RocksDb.Path)}" : $"redis {Endpoints(options.Redis.Configuration)}");
        }

        return parts.Count == 0 ? "memory only" : string.Join(", ", parts);
    }

    /// <summary>The host:port parts of a configuration string, leaving out options such as a password.</summary>
    private static string Endpoints(string configuration) =>
        string.Join(",", configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(p => !p.Contains('=', StringComparison.Ordinal)));
}
