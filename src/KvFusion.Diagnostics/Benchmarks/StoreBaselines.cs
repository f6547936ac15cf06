using System.Diagnostics;
using System.Globalization;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>
/// The RocksDB tier's baseline: each value written to its own file and read back whole, in a folder on the same file
/// system, by the same callers. No fsync, as the RocksDB tier by default does not sync either (its write-ahead log
/// survives a process kill without it).
/// </summary>
public static class FileBaseline
{
    /// <summary>Writes then reads <see cref="StoreBenchmarkOptions.OperationsFor"/> files per cell in <paramref name="directory"/>.</summary>
    public static async Task<List<StoreBenchmarkCell>> MeasureAsync(string directory, StoreBenchmarkOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Directory.CreateDirectory(directory);
        var cells = new List<StoreBenchmarkCell>();
        progress?.Report("file: warm-up");
        await StoreBenchmark.WarmUpAsync(options, async (value, i) =>
        {
            var path = Path.Combine(directory, "warm-" + i.ToString("x8", CultureInfo.InvariantCulture) + ".bin");
            await File.WriteAllBytesAsync(path, value, cancellationToken).ConfigureAwait(false);
            _ = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            File.Delete(path);
        }).ConfigureAwait(false);
        foreach (var size in options.ValueBytes)
        {
            var value = StoreBenchmark.RandomValue(size);
            foreach (var callers in options.Callers)
            {
                var n = options.OperationsFor(size, callers);
                string PathOf(int i) => Path.Combine(directory, i.ToString("x8", CultureInfo.InvariantCulture) + ".bin");
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"file: write {n} x {StoreBenchmark.Size(size)}, {callers} callers"));
                cells.Add(await StoreBenchmark.RunAsync("file", "put", size, callers, n, async i =>
                {
                    var stream = new FileStream(PathOf(i), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
                    await using (stream.ConfigureAwait(false))
                    {
                        await stream.WriteAsync(value, cancellationToken).ConfigureAwait(false);
                    }
                }, cancellationToken).ConfigureAwait(false));
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"file: read {n} x {StoreBenchmark.Size(size)}, {callers} callers"));
                cells.Add(await StoreBenchmark.RunAsync("file", "get", size, callers, n, async i =>
                {
                    var stream = new FileStream(PathOf(i), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
                    await using (stream.ConfigureAwait(false))
                    {
                        var back = new byte[stream.Length];
                        await stream.ReadExactlyAsync(back, cancellationToken).ConfigureAwait(false);
                    }
                }, cancellationToken).ConfigureAwait(false));
                for (var i = 0; i < n; i++)
                {
                    File.Delete(PathOf(i));
                }
            }
        }

        return cells;
    }
}

/// <summary>
/// The Redis tier's baseline: Redis's own <c>redis-benchmark</c> (SET then GET of values of the same size, the same
/// number of parallel connections as callers, <c>--cluster</c> for a cluster) against the same server in the same run.
/// </summary>
public static class RedisBenchmarkBaseline
{
    /// <summary>Where redis-benchmark is, or null when it is not on the PATH.</summary>
    public static string? Locate()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "redis-benchmark");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Runs redis-benchmark at every size and caller count against <paramref name="host"/>:<paramref name="port"/>.</summary>
    /// <exception cref="InvalidOperationException">redis-benchmark failed or printed no figures; the message holds its output.</exception>
    public static async Task<List<StoreBenchmarkCell>> MeasureAsync(string executable, string host, int port, bool cluster, StoreBenchmarkOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var cells = new List<StoreBenchmarkCell>();
        foreach (var size in options.ValueBytes)
        {
            foreach (var callers in options.Callers)
            {
                var n = options.OperationsFor(size, callers);
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"redis-benchmark: {n} x {StoreBenchmark.Size(size)}, {callers} connections"));
                var args = new List<string> { "-h", host, "-p", port.ToString(CultureInfo.InvariantCulture), "-t", "set,get", "-d", size.ToString(CultureInfo.InvariantCulture), "-n", n.ToString(CultureInfo.InvariantCulture), "-c", callers.ToString(CultureInfo.InvariantCulture), "--csv" };
                if (cluster)
                {
                    args.Add("--cluster");
                }

                var output = await RunAsync(executable, args, cancellationToken).ConfigureAwait(false);
                foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var fields = line.Split(',');
                    if (fields.Length < 8 || Unquote(fields[0]) is not ("SET" or "GET") || !TryNumber(fields[1], out var rps) || !TryNumber(fields[4], out var p50) || !TryNumber(fields[6], out var p99))
                    {
                        continue;
                    }

                    cells.Add(new StoreBenchmarkCell
                    {
                        Subject = "redis-benchmark",
                        Operation = Unquote(fields[0]) == "SET" ? "put" : "get",
                        ValueBytes = size,
                        Callers = callers,
                        Operations = n,
                        GigabytesPerSecond = rps * size / 1e9,
                        P50Milliseconds = p50,
                        P99Milliseconds = p99,
                    });
                }

                if (!cells.Exists(c => c.ValueBytes == size && c.Callers == callers && c.Operation == "get"))
                {
                    throw new InvalidOperationException($"redis-benchmark printed no GET figure for {size}-byte values: {output.Trim()}");
                }
            }
        }

        return cells;
    }

    private static async Task<string> RunAsync(string executable, IEnumerable<string> args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        var text = await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false);
        return process.ExitCode == 0 ? text : throw new InvalidOperationException($"redis-benchmark exited with {process.ExitCode}: {text.Trim()}");
    }

    private static string Unquote(string field) => field.Trim().Trim('"');

    private static bool TryNumber(string field, out double value) => double.TryParse(Unquote(field), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
}
