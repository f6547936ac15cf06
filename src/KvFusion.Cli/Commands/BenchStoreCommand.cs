using System.CommandLine;
using System.Globalization;
using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Storage.Redis;
using KvFusion.Storage.RocksDb;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench store</c>: put and get throughput (GB/s) and p50/p99 latency of the host-memory, RocksDB and
/// Redis tiers at each value size and caller count, against baselines measured in the same run: raw files for
/// RocksDB, redis-benchmark on the same server for Redis (<see cref="StoreBenchmark"/>).
/// </summary>
internal static class BenchStoreCommand
{
    public static Command Create()
    {
        var dir = new Option<string?>("--dir") { Description = "Folder for the RocksDB tier and the file baseline (default: a fresh folder in the system temp folder, removed after)." };
        var redis = new Option<string?>("--redis") { Description = "redis://HOST:PORT[,HOST:PORT...] to measure the Redis tier and redis-benchmark against (several hosts: a cluster). Without it Redis is skipped." };
        var sizes = new Option<string>("--sizes") { Description = "Comma-separated value sizes (k and m suffixes are KiB and MiB).", DefaultValueFactory = _ => "256k,4m,32m" };
        var callers = new Option<string>("--callers") { Description = "Comma-separated concurrent caller counts.", DefaultValueFactory = _ => "1,16" };
        var megabytes = new Option<int>("--megabytes") { Description = "MiB moved per measurement (at least 2 operations per caller).", DefaultValueFactory = _ => 512 }.AtLeast(1);
        var tiers = new Option<string>("--tiers") { Description = "Comma-separated tiers to measure: memory, rocksdb, redis.", DefaultValueFactory = _ => "memory,rocksdb,redis" };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var redisConnections = new Option<int>("--redis-connections") { Description = "Connections of the Redis tier's pool (its Connections setting).", DefaultValueFactory = _ => RedisTierOptions.DefaultConnections };
        var command = new Command("store", "Storage tiers: put/get GB/s and p50/p99 latency per value size and caller count, against raw files (RocksDB) and redis-benchmark (Redis) in the same run.")
        {
            dir, redis, sizes, callers, megabytes, tiers, json, redisConnections,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var options = new StoreBenchmarkOptions
            {
                ValueBytes = ParseSizes(parse.GetValue(sizes)!),
                Callers = BenchCommands.ParseList(parse.GetValue(callers)!, "--callers"),
                BytesPerCell = (long)parse.GetValue(megabytes) << 20,
            };
            var wanted = parse.GetValue(tiers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => t.ToLowerInvariant()).ToHashSet();
            foreach (var t in wanted)
            {
                if (t is not ("memory" or "rocksdb" or "redis"))
                {
                    throw new CliException($"--tiers: '{t}' is not a tier (memory, rocksdb, redis).");
                }
            }

            var given = parse.GetValue(dir);
            var root = given ?? Path.Combine(Path.GetTempPath(), "kvfusion-bench-store-" + Guid.NewGuid().ToString("N"));
            var cells = new List<StoreBenchmarkCell>();
            var skipped = new List<StoreBenchmarkSkip>();
            try
            {
                await CommonOptions.Diagnostics.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("store bench");
                    var progress = new Progress<string>(s => task.Description = Markup.Escape(s));
                    if (wanted.Contains("memory"))
                    {
                        await using var memory = new HostMemoryTier(new HostMemoryTierOptions { ByteBudget = 16L << 30 });
                        cells.AddRange(await StoreBenchmark.MeasureTierAsync(memory, options, progress, ct).ConfigureAwait(false));
                    }

                    if (wanted.Contains("rocksdb"))
                    {
                        await using (var rocks = new RocksDbTier(new RocksDbTierOptions { Path = Path.Combine(root, "rocksdb") }, null))
                        {
                            cells.AddRange(await StoreBenchmark.MeasureTierAsync(rocks, options, progress, ct).ConfigureAwait(false));
                        }

                        cells.AddRange(await FileBaseline.MeasureAsync(Path.Combine(root, "files"), options, progress, ct).ConfigureAwait(false));
                    }

                    if (wanted.Contains("redis"))
                    {
                        await MeasureRedisAsync(parse.GetValue(redis), parse.GetValue(redisConnections), options, cells, skipped, progress, ct).ConfigureAwait(false);
                    }

                    task.Value = task.MaxValue;
                }).ConfigureAwait(false);
            }
            finally
            {
                if (given is null && Directory.Exists(root))
                {
                    Directory.Delete(root, recursive: true);
                }
            }

            WriteTable(cells, skipped, options);
            if (parse.GetValue(json) is { } jsonPath)
            {
                using (var file = JsonReport.Create(jsonPath, "none", "cpu"))
                {
                    StoreBenchmark.WriteJson(file.Writer, options, cells, skipped);
                }

                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {jsonPath}[/]");
            }

            return 0;
        }));
        return command;
    }

    private static async Task MeasureRedisAsync(string? uri, int connections, StoreBenchmarkOptions options, List<StoreBenchmarkCell> cells, List<StoreBenchmarkSkip> skipped, IProgress<string> progress, CancellationToken ct)
    {
        if (uri is null)
        {
            skipped.Add(new StoreBenchmarkSkip("redis", "no --redis redis://HOST:PORT given"));
            return;
        }

        RedisTierOptions redisOptions;
        try
        {
            redisOptions = RedisTierOptions.ParseUri(uri) with { MaxValueBytes = Math.Max(256L << 20, options.ValueBytes.Max()) };
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--redis: {e.Message}");
        }

        redisOptions = redisOptions with { Connections = connections };
        try
        {
            redisOptions.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--redis-connections: {e.Message}");
        }

        var endpoints = redisOptions.Configuration.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(p => !p.Contains('=', StringComparison.Ordinal)).ToList();
        await using (var tier = await RedisTier.ConnectAsync(redisOptions, null, ct).ConfigureAwait(false))
        {
            try
            {
                await tier.ProbeAsync(ct).ConfigureAwait(false);
            }
            catch (KvTierUnavailableException e)
            {
                throw new CliException($"--redis: {e.Message}");
            }

            cells.AddRange(await StoreBenchmark.MeasureTierAsync(tier, options, progress, ct).ConfigureAwait(false));
        }

        if (RedisBenchmarkBaseline.Locate() is not { } executable)
        {
            skipped.Add(new StoreBenchmarkSkip("redis-benchmark", "redis-benchmark is not on the PATH (Debian: apt-get install redis-tools)"));
            return;
        }

        var first = endpoints[0];
        var colon = first.LastIndexOf(':');
        var host = colon > 0 ? first[..colon] : first;
        var port = colon > 0 ? int.Parse(first[(colon + 1)..], CultureInfo.InvariantCulture) : RedisTierOptions.DefaultPort;
        cells.AddRange(await RedisBenchmarkBaseline.MeasureAsync(executable, host, port, endpoints.Count > 1, options, progress, ct).ConfigureAwait(false));
    }

    private static int[] ParseSizes(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sizes = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            var p = parts[i].ToLowerInvariant();
            var (digits, scale) = p.EndsWith('m') ? (p[..^1], 1 << 20) : p.EndsWith('k') ? (p[..^1], 1 << 10) : (p, 1);
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || (long)n * scale > 256 << 20)
            {
                throw new CliException($"--sizes: '{parts[i]}' is not a size from 1 byte to 256m.");
            }

            sizes[i] = n * scale;
        }

        return sizes.Length > 0 ? sizes : throw new CliException("--sizes: give at least one size.");
    }

    private static void WriteTable(List<StoreBenchmarkCell> cells, List<StoreBenchmarkSkip> skipped, StoreBenchmarkOptions options)
    {
        static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";
        var table = new Table()
            .Title(string.Create(CultureInfo.InvariantCulture, $"Storage tiers: {options.BytesPerCell >> 20} MiB per measurement, incompressible values"))
            .AddColumns("tier", "op", "value", "callers", "GB/s", "p50 ms", "p99 ms", "baseline", "baseline GB/s", "baseline p50 ms", "share of baseline");
        foreach (var c in cells.Where(c => c.Subject is not ("file" or "redis-benchmark")))
        {
            var baselineName = c.Subject switch { "rocksdb" => "file", "redis" => "redis-benchmark", _ => null };
            var b = baselineName is null ? null : cells.Find(x => x.Subject == baselineName && x.Operation == c.Operation && x.ValueBytes == c.ValueBytes && x.Callers == c.Callers);
            table.AddRow(c.Subject, c.Operation, StoreBenchmark.Size(c.ValueBytes), c.Callers.ToString(CultureInfo.InvariantCulture),
                F(c.GigabytesPerSecond, "F3"), F(c.P50Milliseconds, "F2"), F(c.P99Milliseconds, "F2"),
                b is null ? "-" : $"[grey]{b.Subject}[/]", b is null ? "-" : F(b.GigabytesPerSecond, "F3"), b is null ? "-" : F(b.P50Milliseconds, "F2"),
                b is null ? "-" : F(c.GigabytesPerSecond / b.GigabytesPerSecond, "P0"));
        }

        AnsiConsole.Write(table);
        foreach (var s in skipped)
        {
            AnsiConsole.MarkupLineInterpolated($"[yellow]skipped {s.Subject}: {s.Reason}[/]");
        }

        AnsiConsole.MarkupLine("[grey]GB/s are 10^9 bytes per second of values moved by all callers together; each operation is awaited by its caller. The file baseline writes and reads one file per value without fsync, as the RocksDB tier does by default; redis-benchmark runs SET then GET with as many connections as callers.[/]");
    }
}
