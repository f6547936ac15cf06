using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>Settings of <see cref="StoreBenchmark"/>.</summary>
public sealed record StoreBenchmarkOptions
{
    /// <summary>Value sizes in bytes (default 256 KiB, 4 MiB, 32 MiB).</summary>
    public IReadOnlyList<int> ValueBytes { get; init; } = [256 << 10, 4 << 20, 32 << 20];

    /// <summary>Concurrent callers (default 1 and 16).</summary>
    public IReadOnlyList<int> Callers { get; init; } = [1, 16];

    /// <summary>Bytes moved per measurement (each cell does at least 2 operations per caller).</summary>
    public long BytesPerCell { get; init; } = 512L << 20;

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (ValueBytes is not { Count: > 0 } || ValueBytes.Any(v => v < 1 || v > (256 << 20)))
        {
            throw new ArgumentException($"{nameof(ValueBytes)} must hold sizes from 1 byte to 256 MiB.");
        }

        if (Callers is not { Count: > 0 } || Callers.Any(c => c < 1 || c > 256))
        {
            throw new ArgumentException($"{nameof(Callers)} must hold counts from 1 to 256.");
        }

        if (BytesPerCell < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(BytesPerCell)} must be positive; got {BytesPerCell}."));
        }
    }

    /// <summary>Operations per cell for a value size and caller count.</summary>
    public int OperationsFor(int valueBytes, int callers) => (int)Math.Clamp(BytesPerCell / valueBytes, 2L * callers, 100_000);
}

/// <summary>One direction (put or get) of one tier or baseline at one value size and caller count.</summary>
public sealed record StoreBenchmarkCell
{
    /// <summary>What was measured: a tier's name, or a baseline's (<c>redis-benchmark</c>, <c>file</c>).</summary>
    public required string Subject { get; init; }

    /// <summary><c>put</c> or <c>get</c>.</summary>
    public required string Operation { get; init; }

    /// <summary>Value size.</summary>
    public required int ValueBytes { get; init; }

    /// <summary>Concurrent callers.</summary>
    public required int Callers { get; init; }

    /// <summary>Operations done.</summary>
    public required int Operations { get; init; }

    /// <summary>Throughput in 10^9 bytes per second.</summary>
    public required double GigabytesPerSecond { get; init; }

    /// <summary>Median latency of one operation, ms.</summary>
    public required double P50Milliseconds { get; init; }

    /// <summary>99th percentile latency, ms.</summary>
    public required double P99Milliseconds { get; init; }
}

/// <summary>A baseline that could not be measured, and why.</summary>
public sealed record StoreBenchmarkSkip(string Subject, string Reason);

/// <summary>
/// Measures put and get throughput and latency of storage tiers with opaque values of fixed sizes under concurrent
/// callers, each operation awaited by its caller as a request would. Keys are fresh per cell and removed after it.
/// The baselines (redis-benchmark against the same server, a raw file per value in the same folder as RocksDB) are
/// measured in the same run by <see cref="RedisBenchmarkBaseline"/> and <see cref="FileBaseline"/>.
/// </summary>
public static class StoreBenchmark
{
    /// <summary>Measures <paramref name="tier"/> at every size and caller count: puts, then gets of what was put.</summary>
    public static async Task<List<StoreBenchmarkCell>> MeasureTierAsync(IKvTier tier, StoreBenchmarkOptions options, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tier);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var cells = new List<StoreBenchmarkCell>();
        var ns = new KvNamespace("bench", "00");
        // Warm-up keys sit far above the cells' (cell index << 32 | operation).
        var warmUpKey = (int i) => new TierKey(ns, new CacheKey(CacheEntryKind.Chunk, (0x7fffffffL << 32 | (uint)i).ToString("x16", CultureInfo.InvariantCulture), "bench"));
        progress?.Report($"{tier.Name}: warm-up");
        await WarmUpAsync(options, async (value, i) =>
        {
            await tier.PutAsync(warmUpKey(i), value, cancellationToken).ConfigureAwait(false);
            _ = await tier.GetAsync(warmUpKey(i), cancellationToken).ConfigureAwait(false);
            await tier.RemoveAsync(warmUpKey(i), cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var cellIndex = 0;
        foreach (var size in options.ValueBytes)
        {
            var value = RandomValue(size);
            foreach (var callers in options.Callers)
            {
                var n = options.OperationsFor(size, callers);
                var keys = new TierKey[n];
                for (var i = 0; i < n; i++)
                {
                    keys[i] = new TierKey(ns, new CacheKey(CacheEntryKind.Chunk, ((long)cellIndex << 32 | (uint)i).ToString("x16", CultureInfo.InvariantCulture), "bench"));
                }

                cellIndex++;
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"{tier.Name}: put {n} x {Size(size)}, {callers} callers"));
                cells.Add(await RunAsync(tier.Name, "put", size, callers, n, i => tier.PutAsync(keys[i], value, cancellationToken), cancellationToken).ConfigureAwait(false));
                progress?.Report(string.Create(CultureInfo.InvariantCulture, $"{tier.Name}: get {n} x {Size(size)}, {callers} callers"));
                cells.Add(await RunAsync(tier.Name, "get", size, callers, n, async i =>
                {
                    var got = await tier.GetAsync(keys[i], cancellationToken).ConfigureAwait(false);
                    if (got is not { Length: var length } || length != size)
                    {
                        throw new InvalidOperationException($"{tier.Name} returned {(got is null ? "nothing" : got.Value.Length.ToString(CultureInfo.InvariantCulture) + " bytes")} for a {size}-byte value it had acknowledged.");
                    }
                }, cancellationToken).ConfigureAwait(false));
                foreach (var key in keys)
                {
                    await tier.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return cells;
    }

    /// <summary>
    /// Runs <paramref name="operations"/> calls of <paramref name="operation"/> (by index) from <paramref name="callers"/>
    /// concurrent loops and times each.
    /// </summary>
    public static async Task<StoreBenchmarkCell> RunAsync(string subject, string operationName, int valueBytes, int callers, int operations, Func<int, ValueTask> operation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        var latencies = new double[operations];
        var next = -1;
        var wall = Stopwatch.StartNew();
        var loops = new Task[callers];
        for (var c = 0; c < callers; c++)
        {
            loops[c] = Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < operations)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var start = Stopwatch.GetTimestamp();
                    await operation(i).ConfigureAwait(false);
                    latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
            }, cancellationToken);
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        var seconds = wall.Elapsed.TotalSeconds;
        Array.Sort(latencies);
        return new StoreBenchmarkCell
        {
            Subject = subject,
            Operation = operationName,
            ValueBytes = valueBytes,
            Callers = callers,
            Operations = operations,
            GigabytesPerSecond = (double)valueBytes * operations / seconds / 1e9,
            P50Milliseconds = Percentile(latencies, 0.50),
            P99Milliseconds = Percentile(latencies, 0.99),
        };
    }

    /// <summary>
    /// Untimed round trips (put, get, remove) before the first cell: a .NET process runs its first calls of a code path
    /// unoptimized until tiered compilation replaces them, and opens connections and files lazily. Without this the
    /// first cells of a tier (and of the file baseline) measure the JIT, while redis-benchmark is native code. Small
    /// values first (enough calls for the optimized code to be compiled, which happens in the background), then one
    /// round trip per size and caller.
    /// </summary>
    internal static async Task WarmUpAsync(StoreBenchmarkOptions options, Func<byte[], int, Task> roundTrip)
    {
        const int SmallRoundTrips = 64;
        const int SmallCallers = 4;
        var small = RandomValue(4096);
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, SmallCallers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < SmallRoundTrips)
            {
                await roundTrip(small, i).ConfigureAwait(false);
            }
        }))).ConfigureAwait(false);

        // Tiered compilation promotes hot methods in the background shortly after they pass their call count.
        await Task.Delay(TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
        var index = SmallRoundTrips;
        foreach (var size in options.ValueBytes)
        {
            var value = RandomValue(size);
            foreach (var callers in options.Callers)
            {
                var first = index;
                index += Math.Min(callers, 4);
                await Task.WhenAll(Enumerable.Range(first, index - first).Select(i => roundTrip(value, i))).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Writes cells and skips as JSON properties of the open object.</summary>
    public static void WriteJson(Utf8JsonWriter writer, StoreBenchmarkOptions options, IReadOnlyList<StoreBenchmarkCell> cells, IReadOnlyList<StoreBenchmarkSkip> skipped)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(cells);
        ArgumentNullException.ThrowIfNull(skipped);
        writer.WriteNumber("bytes_per_cell", options.BytesPerCell);
        writer.WriteStartArray("cells");
        foreach (var c in cells)
        {
            writer.WriteStartObject();
            writer.WriteString("subject", c.Subject);
            writer.WriteString("operation", c.Operation);
            writer.WriteNumber("value_bytes", c.ValueBytes);
            writer.WriteNumber("callers", c.Callers);
            writer.WriteNumber("operations", c.Operations);
            writer.WriteNumber("gb_per_s", Math.Round(c.GigabytesPerSecond, 4));
            writer.WriteNumber("p50_ms", Math.Round(c.P50Milliseconds, 3));
            writer.WriteNumber("p99_ms", Math.Round(c.P99Milliseconds, 3));
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartArray("skipped");
        foreach (var s in skipped)
        {
            writer.WriteStartObject();
            writer.WriteString("subject", s.Subject);
            writer.WriteString("reason", s.Reason);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    /// <summary>A size as people write it (256 KiB, 4 MiB).</summary>
    public static string Size(int bytes) => bytes switch
    {
        >= 1 << 20 when bytes % (1 << 20) == 0 => string.Create(CultureInfo.InvariantCulture, $"{bytes >> 20} MiB"),
        >= 1 << 10 when bytes % (1 << 10) == 0 => string.Create(CultureInfo.InvariantCulture, $"{bytes >> 10} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };

    internal static byte[] RandomValue(int size)
    {
        // Incompressible, as compressed KV is: neither tier can shrink it.
        var value = new byte[size];
        new Random(size).NextBytes(value);
        return value;
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
