using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using Xunit.Abstractions;
using static KvFusion.Cache.Tests.Container.ContainerBytes;
using static KvFusion.Cache.Tests.Container.ContainerTestData;

namespace KvFusion.Cache.Tests.Container;

/// <summary>
/// The corruption fuzz check of issue 9: mutated, truncated, extended, spliced and random blobs through the reader,
/// for every codec this build has. Each must end in a <see cref="KvContainerException"/> (of the kind the mutation
/// must cause, where it is determined), or read successfully only where the mutation re-sealed the checksums.
/// </summary>
public sealed class KvContainerFuzzTests(ITestOutputHelper output)
{
    private const int BlobsPerCodec = 10_000;

    [Fact]
    public async Task Corrupted_containers_always_end_in_a_container_exception()
    {
        var codecs = AvailableCodecs().ToList();
        var fuzzer = new ContainerFuzzer(20261202);
        var worker = Task.Factory.StartNew(() => fuzzer.Run(codecs, BlobsPerCodec), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            await worker.WaitAsync(TimeSpan.FromSeconds(300));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"The reader hung on blob {fuzzer.Current}.");
        }

        output.WriteLine(fuzzer.Report());
        Assert.True(fuzzer.Total >= 10_000, $"only {fuzzer.Total} blobs were tried");
        Assert.True(fuzzer.Failures.Count == 0, string.Join(Environment.NewLine, fuzzer.Failures.Take(20)));
        Assert.Empty(fuzzer.UnmutatedFields);
    }
}

/// <summary>Generates the blobs and checks each outcome; runs on one thread so allocations can be measured.</summary>
internal sealed class ContainerFuzzer(int seed)
{
    /// <summary>Tight limits, so a header re-sealed with a larger claim stays cheap to allocate.</summary>
    private static readonly KvContainerLimits FuzzLimits = new()
    {
        MaxHeaderBytes = 64 * 1024,
        MaxTokens = 512,
        MaxLayers = 16,
        MaxKvHeads = 16,
        MaxHeadDim = 256,
        MaxHiddenSize = 1024,
        MaxSectionBytes = 1 << 20,
        MaxTotalBytes = 16 << 20,
    };

    private static readonly TimeSpan PerBlobLimit = TimeSpan.FromSeconds(5);

    private readonly Random _rng = new(seed);
    private readonly SortedDictionary<string, int> _outcomes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _mutatedFields = [];
    private readonly List<string> _layoutFields = [];
    private long _maxAllocated;
    private double _maxAllocationRatio;
    private TimeSpan _slowest;

    public List<string> Failures { get; } = [];

    public int Total { get; private set; }

    public volatile string Current = "none yet";

    public IEnumerable<string> UnmutatedFields => _layoutFields.Distinct().Where(f => !_mutatedFields.Values.Any(s => s.Contains(f)));

    private enum Expect
    {
        /// <summary>Must fail with the given kind.</summary>
        Kind,

        /// <summary>Must fail, with any kind.</summary>
        Fail,

        /// <summary>May read (the mutation re-sealed the checksums); failing is fine too.</summary>
        MayRead,
    }

    public void Run(IReadOnlyList<KvCodecSpec> codecs, int blobsPerCodec)
    {
        foreach (var codec in codecs)
        {
            var bases = Bases(codec);
            foreach (var b in bases)
            {
                _layoutFields.AddRange(Fields(b).Select(f => f.Name));
                Read(b, FuzzLimits, 1, out _); // warm up: JIT and statics are not the reader's allocations
            }

            for (var n = 0; n < blobsPerCodec; n++)
            {
                var which = n % bases.Length;
                var baseBlob = bases[which];
                var strategy = n % 11;
                var (name, blob, expect, kind) = Mutate(strategy, baseBlob, bases[(which + 1) % bases.Length], codec);
                Current = $"{codec} #{n} {name}";
                Check(codec, name, blob, expect, kind, detailed: n % 8 == 0);
                Total++;
            }
        }
    }

    public string Report()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Total} blobs; failures {Failures.Count}; slowest read {_slowest.TotalMilliseconds:F1} ms; most allocated {_maxAllocated} bytes; most allocated per blob byte {_maxAllocationRatio:F1}");
        foreach (var (key, count) in _outcomes)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {key}: {count}");
        }

        foreach (var (strategy, fields) in _mutatedFields)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {strategy} covered {fields.Count} fields: {string.Join(", ", fields.Order(StringComparer.Ordinal))}");
        }

        return sb.ToString();
    }

    private static byte[][] Bases(KvCodecSpec codec)
    {
        var a = Entry(layers: 2, heads: 2, tokens: 5, headDim: 8, seed: 11);
        var b = Entry(layers: 3, heads: 1, tokens: 3, headDim: 4, seed: 12, tokenIds: false);
        var prefix = new CachedKv(new CacheKey(CacheEntryKind.PrefixBlock, b.Key.Id, string.Empty), b.ModelFingerprint, b.TokenizerFingerprint, null, b.TokenCount,
            b.LayerCount, b.KvHeads, b.HeadDim, b.Keys.ToArray(), b.Values.ToArray());
        var c = Entry(layers: 1, heads: 3, tokens: 9, headDim: 16, seed: 13);
        return
        [
            KvContainerWriter.ToArray(a, codec),
            KvContainerWriter.ToArray(prefix, Hidden(prefix, 6, [0, 2]), codec),
            KvContainerWriter.ToArray(c, Hidden(c, 10, [0]), codec),
        ];
    }

    private (string Name, byte[] Blob, Expect Expect, KvContainerError Kind) Mutate(int strategy, byte[] blob, byte[] other, KvCodecSpec codec)
    {
        var fields = Fields(blob);
        var sections = KvContainerReader.Inspect(blob, Lenient).Sections;
        switch (strategy)
        {
            case 0:
            {
                // One header or preamble field, checksum left as it was.
                var f = fields[_rng.Next(fields.Count)];
                Note("header byte", f.Name);
                var copy = (byte[])blob.Clone();
                copy[f.Offset + _rng.Next(Math.Max(1, f.Length))] ^= (byte)_rng.Next(1, 256);
                return f.Name switch
                {
                    "magic" => ($"header byte: {f.Name}", copy, Expect.Kind, KvContainerError.BadMagic),
                    "format version" or "flags" => ($"header byte: {f.Name}", copy, Expect.Kind, KvContainerError.UnsupportedVersion),
                    "header length" => ($"header byte: {f.Name}", copy, Expect.Fail, default),
                    _ => ($"header byte: {f.Name}", copy, Expect.Kind, KvContainerError.HeaderChecksumMismatch),
                };
            }

            case 1:
            {
                // One header field set to a boundary or random value, then the header re-sealed.
                var candidates = fields.Where(x => x.Offset >= KvContainerFormat.PreambleLength && x.Name != "header checksum").ToList();
                var f = candidates[_rng.Next(candidates.Count)];
                Note("resealed header field", f.Name);
                var copy = (byte[])blob.Clone();
                WriteValue(copy.AsSpan(f.Offset, f.Length));
                Reseal(copy);
                return (copy.AsSpan().SequenceEqual(blob) ? "resealed header field (unchanged)" : $"resealed header field: {f.Name}", copy, Expect.MayRead, default);
            }

            case 2:
            {
                var s = sections[_rng.Next(sections.Count)];
                var at = _rng.Next(KvContainerFormat.FrameLength);
                var part = at switch { < 4 => "index", 4 => "kind", < 8 => "reserved", < 16 => "length", _ => "checksum" };
                Note("frame byte", part);
                var copy = (byte[])blob.Clone();
                copy[(int)s.Offset + at] ^= (byte)_rng.Next(1, 256);
                return part switch
                {
                    "index" or "kind" or "reserved" => ($"frame byte: {part}", copy, Expect.Kind, KvContainerError.Malformed),
                    "checksum" => ($"frame byte: {part}", copy, Expect.Kind, KvContainerError.SectionChecksumMismatch),
                    _ => ($"frame byte: {part}", copy, Expect.Fail, default),
                };
            }

            case 3 or 4:
            {
                var s = sections[_rng.Next(sections.Count)];
                if (s.PayloadBytes == 0)
                {
                    return ("empty payload", [.. blob, 0], Expect.Kind, KvContainerError.TrailingData);
                }

                var copy = (byte[])blob.Clone();
                var flips = 1 + _rng.Next(4);
                for (var i = 0; i < flips; i++)
                {
                    copy[(int)s.Offset + 24 + _rng.Next((int)s.PayloadBytes)] ^= (byte)(1 << _rng.Next(8));
                }

                if (copy.AsSpan().SequenceEqual(blob))
                {
                    return ("payload bits (cancelled out)", copy, Expect.MayRead, default);
                }

                if (strategy == 3)
                {
                    return ("payload bits", copy, Expect.Kind, KvContainerError.SectionChecksumMismatch);
                }

                // Re-sealed: the codec itself meets the corrupt payload.
                ResealSectionAt(copy, (int)s.Offset);
                return ($"resealed payload bits ({codec})", copy, Expect.MayRead, default);
            }

            case 5:
                return ("truncated", blob[.._rng.Next(blob.Length)], Expect.Kind, KvContainerError.Truncated);
            case 6:
            {
                var extra = new byte[1 + _rng.Next(64)];
                _rng.NextBytes(extra);
                return ("extended", [.. blob, .. extra], Expect.Kind, KvContainerError.TrailingData);
            }

            case 7:
            {
                var at = _rng.Next(blob.Length);
                var n = 1 + _rng.Next(8);
                if (_rng.Next(2) == 0)
                {
                    var extra = new byte[n];
                    _rng.NextBytes(extra);
                    return ("inserted bytes", [.. blob[..at], .. extra, .. blob[at..]], Expect.Fail, default);
                }

                return ("deleted bytes", [.. blob[..at], .. blob[Math.Min(blob.Length, at + n)..]], Expect.Fail, default);
            }

            case 8:
            {
                var random = new byte[_rng.Next(2 * blob.Length)];
                _rng.NextBytes(random);
                var keep = _rng.Next(3) switch { 0 => 0, 1 => Math.Min(random.Length, 8), _ => Math.Min(random.Length, KvContainerFormat.PreambleLength) };
                blob.AsSpan(0, keep).CopyTo(random);
                return (keep switch { 0 => "random", 8 => "random after the magic", _ => "random after the preamble" }, random, Expect.Fail, default);
            }

            case 9:
            {
                var cutA = _rng.Next(blob.Length);
                var cutB = _rng.Next(other.Length);
                byte[] spliced = [.. blob[..cutA], .. other[cutB..]];
                var same = spliced.AsSpan().SequenceEqual(blob) || spliced.AsSpan().SequenceEqual(other);
                return ("spliced", spliced, same ? Expect.MayRead : Expect.Fail, default);
            }

            default:
            {
                // Header length changed and the checksum recomputed over the new range.
                var copy = (byte[])blob.Clone();
                var length = BinaryPrimitives.ReadUInt32LittleEndian(copy.AsSpan(12));
                var changed = (uint)Math.Max(0, length + _rng.Next(-8, 9));
                if (changed == length)
                {
                    changed++;
                }

                BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(12), changed);
                if (16 + changed + 8 <= copy.Length)
                {
                    Reseal(copy);
                }

                return ("resealed header length", copy, Expect.Fail, default);
            }
        }
    }

    private void WriteValue(Span<byte> field)
    {
        switch (_rng.Next(6))
        {
            case 0:
                field.Clear();
                break;
            case 1:
                field.Fill(0xFF);
                break;
            case 2 when field.Length >= 4:
                BinaryPrimitives.WriteUInt32LittleEndian(field, BinaryPrimitives.ReadUInt32LittleEndian(field) + (uint)_rng.Next(-2, 3));
                break;
            case 3 when field.Length >= 4:
                BinaryPrimitives.WriteUInt32LittleEndian(field, 1u << _rng.Next(32));
                break;
            case 4 when field.Length > 0:
                field[_rng.Next(field.Length)] ^= (byte)(1 << _rng.Next(8));
                break;
            default:
                _rng.NextBytes(field);
                break;
        }
    }

    private void Check(KvCodecSpec codec, string name, byte[] blob, Expect expect, KvContainerError kind, bool detailed)
    {
        var outcome = Read(blob, FuzzLimits, 1, out var error);
        var bucket = Bucket(name);
        Count($"{codec} {bucket} -> {outcome}");
        switch (expect)
        {
            case Expect.Kind when error?.Error != kind:
                Fail(codec, name, blob, $"expected {kind}, got {outcome}");
                break;
            case Expect.Fail when error is null && !Unexpected(outcome):
                Fail(codec, name, blob, "read successfully");
                break;
        }

        if (!detailed || Unexpected(outcome))
        {
            return;
        }

        // The same bytes through the other readers, in parallel too, and under the default limits.
        var parallel = Read(blob, FuzzLimits, 2, out _);
        var stream = ReadStream(blob, FuzzLimits, pipe: false);
        var pipe = ReadStream(blob, FuzzLimits, pipe: true);
        foreach (var (reader, other) in new[] { ("parallel span", parallel), ("stream", stream), ("pipe", pipe) })
        {
            if (other != outcome)
            {
                Fail(codec, name, blob, $"span read gave {outcome}, the {reader} reader {other}");
            }
        }

        var defaults = Read(blob, KvContainerLimits.Default, 1, out _);
        if (Unexpected(defaults))
        {
            Fail(codec, name, blob, $"under the default limits: {defaults}");
        }
    }

    /// <summary>Reads on this thread, bounding time and allocation; returns the outcome's name.</summary>
    private string Read(byte[] blob, KvContainerLimits limits, int degree, out KvContainerException? error)
    {
        error = null;
        var options = new KvContainerReadOptions { Limits = limits, MaxDegreeOfParallelism = degree };
        var claimed = ClaimedBytes(blob, limits);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        string outcome;
        try
        {
            KvContainerReader.ReadWithHiddenStates(blob, options: options);
            outcome = "read";
        }
        catch (KvContainerException e)
        {
            error = e;
            outcome = e.Error.ToString();
            if (e.Message.Contains('\n', StringComparison.Ordinal) || e.Message.Length == 0)
            {
                outcome = "UNEXPECTED multi-line message";
            }
        }
#pragma warning disable CA1031 // Any other exception is exactly what the fuzz test looks for.
        catch (Exception e)
#pragma warning restore CA1031
        {
            outcome = $"UNEXPECTED {e.GetType().Name}: {e.Message}";
        }

        var elapsed = clock.Elapsed;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (degree == 1)
        {
            // Decoded arrays only for what a verified header claims; everything else a small multiple of the blob.
            var bound = (256 * 1024) + (16L * blob.Length) + (claimed * 5 / 4);
            if (allocated > bound)
            {
                outcome = $"UNEXPECTED allocation of {allocated} bytes (bound {bound})";
            }

            _maxAllocated = Math.Max(_maxAllocated, allocated);
            _maxAllocationRatio = Math.Max(_maxAllocationRatio, (double)Math.Max(0, allocated - claimed) / Math.Max(1, blob.Length));
        }

        if (elapsed > PerBlobLimit)
        {
            outcome = $"UNEXPECTED slow read ({elapsed.TotalSeconds:F1} s)";
        }

        _slowest = elapsed > _slowest ? elapsed : _slowest;
        return outcome;
    }

    private static string ReadStream(byte[] blob, KvContainerLimits limits, bool pipe)
    {
        var options = new KvContainerReadOptions { Limits = limits, MaxDegreeOfParallelism = pipe ? 2 : 1 };
        try
        {
            var task = pipe
                ? KvContainerReader.ReadWithHiddenStatesAsync(PipeReader.Create(new TrickleStream(blob, 5)), options: options).AsTask()
                : KvContainerReader.ReadWithHiddenStatesAsync(new TrickleStream(blob, 3), options: options).AsTask();
            if (!task.Wait(PerBlobLimit))
            {
                return "UNEXPECTED hang";
            }

            return "read";
        }
        catch (AggregateException e) when (e.InnerException is KvContainerException k)
        {
            return k.Error.ToString();
        }
#pragma warning disable CA1031 // Any other exception is exactly what the fuzz test looks for.
        catch (Exception e)
#pragma warning restore CA1031
        {
            var inner = e is AggregateException { InnerException: { } i } ? i : e;
            return $"UNEXPECTED {inner.GetType().Name}: {inner.Message}";
        }
    }

    /// <summary>The decoded bytes a header that verifies claims (0 when it does not verify).</summary>
    private static long ClaimedBytes(byte[] blob, KvContainerLimits limits)
    {
        try
        {
            var h = KvContainerReader.ReadHeader(blob, new KvContainerReadOptions { Limits = limits });
            return (4L * h.LayerCount * h.KvHeads * h.TokenCount * h.HeadDim) + (2L * h.HiddenStateLayers.Count * h.TokenCount * h.HiddenSize);
        }
        catch (KvContainerException)
        {
            return 0;
        }
    }

    private static bool Unexpected(string outcome) => outcome.StartsWith("UNEXPECTED", StringComparison.Ordinal);

    private static string Bucket(string name)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? name : name[..colon];
    }

    private void Note(string strategy, string field)
    {
        if (!_mutatedFields.TryGetValue(strategy, out var set))
        {
            _mutatedFields[strategy] = set = new HashSet<string>(StringComparer.Ordinal);
        }

        set.Add(field);
    }

    private void Count(string key) => _outcomes[key] = _outcomes.GetValueOrDefault(key) + 1;

    private void Fail(KvCodecSpec codec, string name, byte[] blob, string what)
    {
        if (Failures.Count < 100)
        {
            Failures.Add($"{codec} {name} ({blob.Length} bytes, {Convert.ToHexString(blob.AsSpan(0, Math.Min(blob.Length, 48)))}…): {what}");
        }
    }
}
