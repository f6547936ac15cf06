using KvFusion.Cache.Codecs;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Options;

namespace KvFusion.Storage.Hosting;

/// <summary>
/// Checks <see cref="KvStorageOptions"/> at start; every message names the setting by its configuration path
/// (<c>Storage:Memory:ByteBudget</c>), so a bad appsettings.json or environment variable is found at once.
/// </summary>
public sealed class KvStorageOptionsValidator : IValidateOptions<KvStorageOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, KvStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        const string root = KvStorageOptions.SectionName;
        if (!KvNamespace.IsValidTenant(options.Tenant))
        {
            failures.Add($"{root}:Tenant: '{options.Tenant}' is not a tenant name (1 to {KvNamespace.MaxTenantLength} of lowercase letters, digits, '.', '_', '-', starting with a letter or digit).");
        }

        if (!KvCodecSpec.TryParse(options.Codec, out _, out var codecError))
        {
            failures.Add($"{root}:Codec: {codecError}");
        }

        IReadOnlyList<KvStorageTierKind> tiers = [];
        try
        {
            tiers = ParseTiers(options.Tiers);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{root}:Tiers: {e.Message}");
        }

        foreach (var (tier, codec) in options.TierCodecs ?? [])
        {
            if (!Enum.TryParse<KvStorageTierKind>(tier, ignoreCase: true, out var kind) || !tiers.Contains(kind))
            {
                failures.Add($"{root}:TierCodecs:{tier}: '{tier}' is not one of the configured tiers ({options.Tiers}).");
            }
            else if (!KvCodecSpec.TryParse(codec, out _, out var error))
            {
                failures.Add($"{root}:TierCodecs:{tier}: {error}");
            }
        }

        foreach (var (tier, levels) in options.TierLevels ?? [])
        {
            if (!Enum.TryParse<KvStorageTierKind>(tier, ignoreCase: true, out var kind) || !tiers.Contains(kind))
            {
                failures.Add($"{root}:TierLevels:{tier}: '{tier}' is not one of the configured tiers ({options.Tiers}).");
                continue;
            }

            foreach (var level in (levels ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!KvCodecSpec.TryParse(level, out _, out var error))
                {
                    failures.Add($"{root}:TierLevels:{tier}: {error}");
                }
            }
        }

        Check(failures, $"{root}:Memory", options.Memory is null ? null : options.Memory.Validate);
        Check(failures, $"{root}:Manager", options.Manager is null ? null : options.Manager.Validate);
        if (tiers.Contains(KvStorageTierKind.RocksDb))
        {
            Check(failures, $"{root}:RocksDb", options.RocksDb is null ? null : options.RocksDb.Validate);
        }

        if (tiers.Contains(KvStorageTierKind.Redis))
        {
            if (string.IsNullOrWhiteSpace(options.Redis?.Configuration))
            {
                failures.Add($"{root}:Redis:Configuration: the tiers name redis, so the servers are needed (host:port[,host:port...]).");
            }
            else
            {
                Check(failures, $"{root}:Redis", options.Redis.Validate);
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Parses <see cref="KvStorageOptions.Tiers"/>.</summary>
    /// <exception cref="ArgumentException">An unknown or repeated tier name.</exception>
    public static IReadOnlyList<KvStorageTierKind> ParseTiers(string? text)
    {
        var parts = (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts is ["none"])
        {
            return [];
        }

        var tiers = new List<KvStorageTierKind>();
        foreach (var part in parts)
        {
            var kind = part.ToUpperInvariant() switch
            {
                "ROCKSDB" => KvStorageTierKind.RocksDb,
                "REDIS" => KvStorageTierKind.Redis,
                _ => throw new ArgumentException($"'{part}' is not a tier; use rocksdb, redis, both (rocksdb,redis) or none."),
            };
            if (tiers.Contains(kind))
            {
                throw new ArgumentException($"'{part}' is named twice.");
            }

            tiers.Add(kind);
        }

        return tiers.Count > 0 ? tiers : throw new ArgumentException("name at least one tier, or none.");
    }

    private static void Check(List<string> failures, string section, Action? validate)
    {
        if (validate is null)
        {
            failures.Add($"{section}: the section is empty.");
            return;
        }

        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            // The tiers' messages start with the property's name: prefixed with the section, that is its path.
            failures.Add($"{section}:{e.Message}");
        }
    }
}
