using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Container;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion store …</c>: what the storage tiers hold (<c>stats</c>) and whether every entry is sound (<c>verify</c>).</summary>
internal static class StoreCommands
{
    public static Command Create()
    {
        var command = new Command("store", "The storage tiers: statistics, and verification of every entry.");
        command.Subcommands.Add(Stats());
        command.Subcommands.Add(Verify());
        return command;
    }

    private static Command Stats()
    {
        var store = StorageOptions.Store();
        var command = new Command("stats", "Entries and bytes per tier, and entries per tenant and model.") { store };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            await using var storage = await StorageOptions.OpenAsync(parse.GetValue(store), null, ct).ConfigureAwait(false);
            var tiers = new Table().Title($"store: {Markup.Escape(StorageOptions.Describe(storage.Options))}")
                .AddColumns("tier", "state", "entries", "bytes", "budget", "evictions", "expirations");
            var namespaces = new Table().Title("entries per namespace").AddColumns("tier", "tenant", "model", "entries");
            foreach (var (tier, health) in LowerTiers(storage.Manager))
            {
                if (health.State == KvTierState.Down)
                {
                    tiers.AddRow(Markup.Escape(tier.Name), $"[red]down[/]: {Markup.Escape(health.LastError ?? string.Empty)}", "-", "-", "-", "-", "-");
                    continue;
                }

                KvTierStatistics stats;
                var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
                try
                {
                    stats = await tier.GetStatisticsAsync(ct).ConfigureAwait(false);
                    await foreach (var key in tier.ListAsync(null, ct).ConfigureAwait(false))
                    {
                        var name = key.Namespace.ToString();
                        counts[name] = counts.GetValueOrDefault(name) + 1;
                    }
                }
                catch (KvTierUnavailableException e)
                {
                    tiers.AddRow(Markup.Escape(tier.Name), $"[red]down[/]: {Markup.Escape(e.Message)}", "-", "-", "-", "-", "-");
                    continue;
                }

                tiers.AddRow(Markup.Escape(tier.Name), "up", Int(stats.Entries), Int(stats.Bytes), stats.ByteBudget > 0 ? Int(stats.ByteBudget) : "none",
                    Int(stats.Evictions), Int(stats.Expirations));
                foreach (var (ns, count) in counts)
                {
                    var slash = ns.IndexOf('/', StringComparison.Ordinal);
                    namespaces.AddRow(Markup.Escape(tier.Name), Markup.Escape(ns[..slash]), Markup.Escape(ns[(slash + 1)..]), Int(count));
                }
            }

            AnsiConsole.Write(tiers);
            AnsiConsole.Write(namespaces);
            return 0;
        }));
        return command;
    }

    private static Command Verify()
    {
        var store = StorageOptions.Store();
        var removeBad = new Option<bool>("--remove-bad") { Description = "Delete every bad entry from its tier (it is then a miss, and recomputed when next needed)." };
        var command = new Command("verify", "Read every entry of every tier and check it (structure, checksums, decoding, key and model); exit 1 naming any that is bad.")
        {
            store, removeBad,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            await using var storage = await StorageOptions.OpenAsync(parse.GetValue(store), null, ct).ConfigureAwait(false);
            var bad = new List<(string Tier, TierKey Key, string Reason)>();
            var checkedCount = 0;
            var unverifiable = 0;
            foreach (var (tier, health) in LowerTiers(storage.Manager))
            {
                if (health.State == KvTierState.Down)
                {
                    throw new CliException($"tier {tier.Name} is down ({health.LastError}); nothing in it could be verified.");
                }

                var keys = new List<TierKey>();
                await foreach (var key in tier.ListAsync(null, ct).ConfigureAwait(false))
                {
                    keys.Add(key);
                }

                await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask($"{tier.Name}: {keys.Count} entries", maxValue: Math.Max(1, keys.Count));
                    foreach (var key in keys)
                    {
                        switch (await CheckAsync(tier, key, ct).ConfigureAwait(false))
                        {
                            case { Unverifiable: true }:
                                unverifiable++;
                                break;
                            case { Problem: { } problem }:
                                bad.Add((tier.Name, key, problem));
                                if (parse.GetValue(removeBad))
                                {
                                    await tier.RemoveAsync(key, ct).ConfigureAwait(false);
                                }

                                break;
                        }

                        checkedCount++;
                        task.Increment(1);
                    }
                }).ConfigureAwait(false);
            }

            if (bad.Count > 0)
            {
                var table = new Table().Title($"bad entries{(parse.GetValue(removeBad) ? " (removed)" : string.Empty)}").AddColumns("tier", "entry", "problem");
                foreach (var (tier, key, reason) in bad)
                {
                    table.AddRow(Markup.Escape(tier), Markup.Escape(key.ToString()), Markup.Escape(reason));
                }

                AnsiConsole.Write(table);
                var named = string.Join("; ", bad.Take(5).Select(b => $"{b.Tier} {b.Key}: {b.Reason}"));
                throw new CliException(string.Create(CultureInfo.InvariantCulture, $"{bad.Count} of {checkedCount} entries are bad: {named}{(bad.Count > 5 ? $"; and {bad.Count - 5} more" : string.Empty)}"));
            }

            AnsiConsole.MarkupLineInterpolated($"verified {checkedCount} entries in {StorageOptions.Describe(storage.Options)}: all sound{(unverifiable > 0 ? $" ({unverifiable} need a codec profile this build lacks and were checked for structure only)" : string.Empty)}");
            return 0;
        }));
        return command;
    }

    private readonly record struct Check(string? Problem, bool Unverifiable);

    /// <summary>Reads one entry straight from its tier and checks everything a reader would rely on.</summary>
    private static async Task<Check> CheckAsync(IKvTier tier, TierKey key, CancellationToken ct)
    {
        ReadOnlyMemory<byte>? blob;
        try
        {
            blob = await tier.GetAsync(key, ct).ConfigureAwait(false);
        }
        catch (KvBlobException e)
        {
            return new Check(e.Message, false);
        }

        if (blob is not { } bytes)
        {
            // Removed or expired since it was listed.
            return default;
        }

        KvContainerHeader header;
        try
        {
            header = KvContainerReader.Inspect(bytes).Header;
        }
        catch (KvContainerException e) when (e.Error is KvContainerError.MissingProfile or KvContainerError.UnknownCodec or KvContainerError.UnsupportedVersion)
        {
            return new Check(null, true);
        }
        catch (KvContainerException e)
        {
            return new Check(e.Message, false);
        }

        if (header.Key != key.Key)
        {
            return new Check($"the container holds {header.Key}, not the entry it is stored as", false);
        }

        return header.ModelFingerprint != key.Namespace.ModelFingerprint
            ? new Check($"the container was computed by model {header.ModelFingerprint}, not the namespace's {key.Namespace.ModelFingerprint}", false)
            : default;
    }

    private static IEnumerable<(IKvTier Tier, KvTierHealth Health)> LowerTiers(KvTierManager manager)
    {
        var health = manager.GetStatistics().Tiers;
        for (var i = 0; i < manager.LowerTiers.Count; i++)
        {
            yield return (manager.LowerTiers[i], health[i]);
        }
    }

    private static string Int(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
