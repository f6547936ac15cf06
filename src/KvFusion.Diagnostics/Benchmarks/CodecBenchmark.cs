using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Container;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>Settings of <see cref="CodecBenchmark.RunAsync"/>.</summary>
public sealed record CodecBenchmarkOptions
{
    /// <summary>The codecs measured, in this order (default: every codec and level).</summary>
    public IReadOnlyList<KvCodecSpec> Codecs { get; init; } = KvCodecSpec.All;

    /// <summary>Timed encode and decode passes over all chunk caches per codec (the median is kept), after one untimed pass.</summary>
    public int Repetitions { get; init; } = 5;

    /// <summary>The recompute ratio of the blend mode whose quality is measured.</summary>
    public double BlendRatio { get; init; } = BlendOptions.DefaultRatio;

    /// <summary>The sink chunks are precomputed behind (null: the engine's default).</summary>
    public SinkKind? Sink { get; init; }

    /// <summary>Greedy continuation length compared with full's.</summary>
    public int GreedyTokens { get; init; } = 8;

    /// <summary>
    /// Cases whose chunks calibrate a cachegen profile per level (chunks that are also in the measured cases are left
    /// out, so the profile never saw what it codes). Each cachegen level is then measured twice: with inline
    /// statistics and with the profile. Empty: inline only.
    /// </summary>
    public IReadOnlyList<FusionCase> CalibrationCases { get; init; } = [];

    /// <summary>
    /// Cachegen quantizations measured after the codecs, each like a cachegen level (inline, and with a profile of
    /// its own when there are calibration cases): the ablations behind the levels' choices (docs/decisions.md).
    /// </summary>
    public IReadOnlyList<CacheGenTuning> Variants { get; init; } = [];

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (Codecs is null || Codecs.Count == 0)
        {
            throw new ArgumentException($"{nameof(Codecs)} must name at least one codec.");
        }

        if (Codecs.Where(c => !c.IsValid).Select(c => c.ToString()).ToList() is { Count: > 0 } bad)
        {
            throw new ArgumentException($"Not codecs: {string.Join(", ", bad)}.");
        }

        if (Repetitions < 1)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(Repetitions)} must be at least 1; got {Repetitions}."));
        }

        if (!(BlendRatio > 0 && BlendRatio <= 1))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(BlendRatio)} must be in (0, 1]; got {BlendRatio}."));
        }

        if (GreedyTokens < 0)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{nameof(GreedyTokens)} must not be negative; got {GreedyTokens}."));
        }

        if (CalibrationCases is null)
        {
            throw new ArgumentException($"{nameof(CalibrationCases)} must be set (empty for none).");
        }

        if (Variants is null)
        {
            throw new ArgumentException($"{nameof(Variants)} must be set (empty for none).");
        }
    }
}

/// <summary>Fused quality of one mode against full recompute (agreements are fractions in [0, 1]).</summary>
/// <param name="MeanKl">Mean KL(full ‖ mode) over the teacher-forced answers.</param>
/// <param name="Top1Agreement">Fraction of answer positions whose argmax equals full's.</param>
/// <param name="GreedyMatch">Fraction of cases whose greedy continuation equals full's.</param>
public sealed record CodecFusionQuality(double MeanKl, double Top1Agreement, double GreedyMatch)
{
    internal static CodecFusionQuality From(FusionModeResult r) => new(r.MeanKl, r.Top1Agreement, r.GreedyMatch);
}

/// <summary>One codec's sizes, speeds and fused quality over the benchmark's chunk caches.</summary>
public sealed record CodecBenchmarkRow
{
    /// <summary>The codec.</summary>
    public required KvCodecSpec Codec { get; init; }

    /// <summary>Where the entropy statistics are: <c>none</c> (the codec has none), <c>inline</c> (in every
    /// container) or <c>profile</c> (a model profile, once per model and level).</summary>
    public required string StatisticsSource { get; init; }

    /// <summary>Bytes of the profile the containers were coded with (paid once per model and level), or null.</summary>
    public long? ProfileBytes { get; init; }

    /// <summary>The cachegen quantization that replaced the level's (a variant), or null.</summary>
    public CacheGenTuning? Tuning { get; init; }

    /// <summary>The codec as the JSON names it: <c>cachegen:2</c>, or a variant's <c>cachegen:k8v3:kch</c>.</summary>
    public string CodecName => Tuning is null ? Codec.ToString() : $"cachegen:{Tuning}";

    /// <summary>The codec and, for a profile, that it used one: <c>cachegen:2</c>, <c>cachegen:2+profile</c>.</summary>
    public string Label => StatisticsSource == ProfileSource ? $"{CodecName}+profile" : CodecName;

    /// <summary>Chunk caches encoded.</summary>
    public required int Entries { get; init; }

    /// <summary>K and V values in them.</summary>
    public required long Values { get; init; }

    /// <summary>Their size as fp16.</summary>
    public required long Fp16Bytes { get; init; }

    /// <summary>Container bytes, everything included.</summary>
    public required long TotalBytes { get; init; }

    /// <summary>Of those, header bytes.</summary>
    public required long HeaderBytes { get; init; }

    /// <summary>Of those, section payload bytes.</summary>
    public required long PayloadBytes { get; init; }

    /// <summary>Of the payload, entropy statistics (tables or their parameters).</summary>
    public required long StatisticsBytes { get; init; }

    /// <summary>Section lengths and checksums.</summary>
    public required long SectionFramingBytes { get; init; }

    /// <summary>Whether every decoded value equals the stored fp16 bit for bit.</summary>
    public required bool BitExact { get; init; }

    /// <summary>Encode speed on one core, in fp16-equivalent MB (10^6 bytes) per second (median pass).</summary>
    public required double EncodeMbPerSecondPerCore { get; init; }

    /// <summary>Decode speed on one core, in fp16-equivalent MB per second (median pass).</summary>
    public required double DecodeMbPerSecondPerCore { get; init; }

    /// <summary>Reuse mode's quality with the caches decoded from this codec.</summary>
    public required CodecFusionQuality Reuse { get; init; }

    /// <summary>Blend mode's quality with the caches decoded from this codec.</summary>
    public required CodecFusionQuality Blend { get; init; }

    /// <summary>Container bits per K or V value.</summary>
    public double BitsPerValue => Values == 0 ? double.NaN : TotalBytes * 8.0 / Values;

    /// <summary>fp16 size over container size.</summary>
    public double RatioToFp16 => TotalBytes == 0 ? double.NaN : (double)Fp16Bytes / TotalBytes;

    /// <summary>Share of the container bytes that is entropy statistics.</summary>
    public double StatisticsShare => TotalBytes == 0 ? double.NaN : (double)StatisticsBytes / TotalBytes;

    internal const string ProfileSource = "profile";
}

/// <summary>A codec the run could not measure, and why (e.g. not built yet).</summary>
/// <param name="Codec">The codec.</param>
/// <param name="Reason">Why.</param>
public sealed record CodecBenchmarkSkip(KvCodecSpec Codec, string Reason);

/// <summary>What <see cref="CodecBenchmark.RunAsync"/> measured.</summary>
public sealed record CodecBenchmarkReport
{
    /// <summary>Cases evaluated.</summary>
    public required int Cases { get; init; }

    /// <summary>Distinct chunk caches encoded per codec.</summary>
    public required int Entries { get; init; }

    /// <summary>Chunk caches the cachegen profiles were calibrated on (none of them among <see cref="Entries"/>).</summary>
    public int CalibrationEntries { get; init; }

    /// <summary>Their fp16 size.</summary>
    public required long Fp16Bytes { get; init; }

    /// <summary>Timed passes per codec.</summary>
    public required int Repetitions { get; init; }

    /// <summary>The reuse mode as written.</summary>
    public required string ReuseMode { get; init; }

    /// <summary>The blend mode as written (e.g. <c>blend:0.15</c>).</summary>
    public required string BlendMode { get; init; }

    /// <summary>Reuse quality with the uncompressed caches (in-memory store), same run.</summary>
    public required CodecFusionQuality BaselineReuse { get; init; }

    /// <summary>Blend quality with the uncompressed caches, same run.</summary>
    public required CodecFusionQuality BaselineBlend { get; init; }

    /// <summary>One row per measured codec, in the order asked.</summary>
    public required IReadOnlyList<CodecBenchmarkRow> Codecs { get; init; }

    /// <summary>Codecs that could not be measured.</summary>
    public required IReadOnlyList<CodecBenchmarkSkip> Skipped { get; init; }
}

/// <summary>Where a run is: <paramref name="Done"/> of <paramref name="Total"/> steps (the baseline, then one per codec).</summary>
/// <param name="Stage">What runs now.</param>
/// <param name="Done">Steps finished.</param>
/// <param name="Total">Steps in all.</param>
public readonly record struct CodecBenchmarkProgress(string Stage, int Done, int Total);

/// <summary>
/// <c>kvfusion bench codec</c>: precomputes the cases' chunk caches once, then per codec encodes and decodes all of
/// them on one core (sizes, bits per value, share of entropy statistics, MB/s in fp16-equivalent bytes) and runs the
/// fusion harness with the caches read through that codec (a <see cref="ContainerKvStore"/>), against the
/// uncompressed caches (<see cref="InMemoryKvStore"/>) measured in the same run.
/// </summary>
public static class CodecBenchmark
{
    private const double Megabyte = 1e6;

    /// <summary>Runs the benchmark.</summary>
    /// <exception cref="ArgumentException">The options are out of range, or there are no cases.</exception>
    public static async Task<CodecBenchmarkReport> RunAsync(
        TransformerModel model, IReadOnlyList<FusionCase> cases, CodecBenchmarkOptions? options = null,
        IProgress<CodecBenchmarkProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(cases);
        options ??= new CodecBenchmarkOptions();
        options.Validate();
        if (cases.Count == 0)
        {
            throw new ArgumentException("The benchmark needs at least one case.", nameof(cases));
        }

        var reuse = new FusionModeSpec(FusionMode.Reuse, 0);
        var blend = new FusionModeSpec(FusionMode.Blend, options.BlendRatio);
        FusionModeSpec[] modes = [reuse, blend];
        var evaluation = new FusionEvaluationOptions { TtftRuns = 1, Sink = options.Sink, GreedyTokens = options.GreedyTokens };
        var total = options.Codecs.Count + options.Variants.Count + 1;

        // The baseline run precomputes every chunk into the in-memory store: those entries are what each codec encodes.
        progress?.Report(new("uncompressed baseline", 0, total));
        var baselineStore = new InMemoryKvStore();
        IReadOnlyList<FusionModeResult> baseline;
        await using (var engine = new FusionEngine(model, baselineStore))
        {
            baseline = await new FusionEvaluator(engine, evaluation).EvaluateAsync(cases, modes, null, cancellationToken).ConfigureAwait(false);
        }

        var entries = new List<CachedKv>();
        foreach (var key in baselineStore.Keys.Where(k => k.Kind == Cache.Keys.CacheEntryKind.Chunk).OrderBy(k => k.ToString(), StringComparer.Ordinal))
        {
            entries.Add((await baselineStore.GetAsync(key, cancellationToken).ConfigureAwait(false))!);
        }

        var calibration = await CalibrationEntriesAsync(model, options, entries, cancellationToken).ConfigureAwait(false);
        var rows = new List<CodecBenchmarkRow>();
        var skipped = new List<CodecBenchmarkSkip>();
        var expected = KvContainerExpectation.FromModel(model);
        for (var i = 0; i < options.Codecs.Count; i++)
        {
            var codec = options.Codecs[i];
            progress?.Report(new(codec.ToString(), i + 1, total));
            var row = await MeasureAsync(model, cases, entries, codec, null, expected, modes, evaluation, options.Repetitions, cancellationToken).ConfigureAwait(false);
            if (row.Row is { } r)
            {
                rows.Add(r);
            }
            else
            {
                skipped.Add(new(codec, row.Skip!));
                continue;
            }

            if (codec.Kind == KvCodecKind.CacheGen && calibration.Count > 0)
            {
                var profile = CacheGenProfile.Build(calibration, codec.Level);
                var profiled = await MeasureAsync(model, cases, entries, codec, profile, expected, modes, evaluation, options.Repetitions, cancellationToken).ConfigureAwait(false);
                rows.Add(profiled.Row!);
            }
        }

        // Variants are coded as cachegen level 1 with their own quantization, which the containers record.
        var variantCodec = KvCodecSpec.CacheGen(1);
        for (var i = 0; i < options.Variants.Count; i++)
        {
            var tuning = options.Variants[i];
            progress?.Report(new($"cachegen:{tuning}", options.Codecs.Count + i + 1, total));
            rows.Add((await MeasureAsync(model, cases, entries, variantCodec, null, expected, modes, evaluation, options.Repetitions, cancellationToken, tuning).ConfigureAwait(false)).Row!);
            if (calibration.Count > 0)
            {
                var profile = CacheGenProfile.Build(calibration, variantCodec.Level, tuning);
                rows.Add((await MeasureAsync(model, cases, entries, variantCodec, profile, expected, modes, evaluation, options.Repetitions, cancellationToken, tuning).ConfigureAwait(false)).Row!);
            }
        }

        progress?.Report(new("done", total, total));
        return new CodecBenchmarkReport
        {
            Cases = cases.Count,
            Entries = entries.Count,
            CalibrationEntries = calibration.Count,
            Fp16Bytes = entries.Sum(e => e.ByteSize),
            Repetitions = options.Repetitions,
            ReuseMode = reuse.ToString(),
            BlendMode = blend.ToString(),
            BaselineReuse = CodecFusionQuality.From(baseline[0]),
            BaselineBlend = CodecFusionQuality.From(baseline[1]),
            Codecs = rows,
            Skipped = skipped,
        };
    }

    /// <summary>
    /// Whether <paramref name="codec"/> can encode yet: codecs still being built throw
    /// <see cref="NotSupportedException"/> from the factory, whose message is returned in <paramref name="reason"/>.
    /// </summary>
    public static bool IsAvailable(KvCodecSpec codec, TransformerModel model, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(model);
        // A short entry of the model's own shape, so a codec's shape rules cannot fail the probe.
        var c = model.Config;
        const int tokens = 16;
        var values = c.LayerCount * c.KvHeadCount * tokens * c.HeadDim;
        var probe = new CachedKv(
            new Cache.Keys.CacheKey(Cache.Keys.CacheEntryKind.Chunk, new string('0', 64), "probe"), model.Fingerprint.Model, model.Fingerprint.Tokenizer,
            new int[tokens], c.LayerCount, c.KvHeadCount, c.HeadDim, new Half[values], new Half[values]);
        try
        {
            _ = KvContainerWriter.ToArray(probe, codec, KvContainerWriteOptions.Default with { MaxDegreeOfParallelism = 1 });
            reason = null;
            return true;
        }
        catch (NotSupportedException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The chunk caches of the calibration cases that are not among the measured entries.</summary>
    private static async Task<List<CachedKv>> CalibrationEntriesAsync(TransformerModel model, CodecBenchmarkOptions options, List<CachedKv> measured, CancellationToken ct)
    {
        var calibration = new List<CachedKv>();
        if (options.CalibrationCases.Count == 0)
        {
            return calibration;
        }

        var store = new InMemoryKvStore();
        await using (var engine = new FusionEngine(model, store))
        {
            foreach (var c in options.CalibrationCases)
            {
                foreach (var chunk in c.Chunks)
                {
                    await engine.PutChunkAsync(ChunkInput.FromText(chunk), options.Sink, c.Prefix, ct).ConfigureAwait(false);
                }
            }
        }

        var measuredKeys = new HashSet<CacheKey>();
        foreach (var e in measured)
        {
            measuredKeys.Add(e.Key);
        }

        foreach (var key in store.Keys.Where(k => k.Kind == CacheEntryKind.Chunk && !measuredKeys.Contains(k)).OrderBy(k => k.ToString(), StringComparer.Ordinal))
        {
            calibration.Add((await store.GetAsync(key, ct).ConfigureAwait(false))!);
        }

        return calibration;
    }

    private static async Task<(CodecBenchmarkRow? Row, string? Skip)> MeasureAsync(
        TransformerModel model, IReadOnlyList<FusionCase> cases, List<CachedKv> entries, KvCodecSpec codec, CacheGenProfile? profile, KvContainerExpectation expected,
        FusionModeSpec[] modes, FusionEvaluationOptions evaluation, int repetitions, CancellationToken ct, CacheGenTuning? tuning = null)
    {
        if (!IsAvailable(codec, model, out var reason))
        {
            return (null, reason);
        }

        // One core: per-core speeds are what the issue asks for, and what scales with the cores a loader has.
        var profiles = new KvCodecProfiles();
        if (profile is not null)
        {
            profiles.Add(profile);
        }

        var writeOptions = KvContainerWriteOptions.Default with { MaxDegreeOfParallelism = 1, Profiles = profiles, CacheGenTuning = tuning };
        var readOptions = KvContainerReadOptions.Default with { MaxDegreeOfParallelism = 1, Profiles = profiles };
        var buffer = new ArrayBufferWriter<byte>();
        var blobs = new byte[entries.Count][];
        long totalBytes = 0, headerBytes = 0, payloadBytes = 0, statisticsBytes = 0, framingBytes = 0;
        var encodeSeconds = new List<double>();
        for (var rep = 0; rep <= repetitions; rep++)
        {
            var sw = Stopwatch.StartNew();
            for (var e = 0; e < entries.Count; e++)
            {
                ct.ThrowIfCancellationRequested();
                buffer.ResetWrittenCount();
                var written = KvContainerWriter.Write(buffer, entries[e], codec, writeOptions);
                if (rep == 0)
                {
                    blobs[e] = buffer.WrittenSpan.ToArray();
                    totalBytes += written.TotalBytes;
                    headerBytes += written.HeaderBytes;
                    payloadBytes += written.PayloadBytes;
                    statisticsBytes += written.StatisticsBytes;
                    framingBytes += written.SectionFramingBytes;
                }
            }

            // The first pass warms up (and keeps the blobs); the others are timed.
            if (rep > 0)
            {
                encodeSeconds.Add(sw.Elapsed.TotalSeconds);
            }
        }

        var decodeSeconds = new List<double>();
        var bitExact = true;
        for (var rep = 0; rep <= repetitions; rep++)
        {
            var sw = Stopwatch.StartNew();
            for (var e = 0; e < entries.Count; e++)
            {
                ct.ThrowIfCancellationRequested();
                var decoded = KvContainerReader.Read(blobs[e], expected, readOptions);
                if (rep == 0)
                {
                    bitExact &= SameBits(entries[e].Keys, decoded.Keys) && SameBits(entries[e].Values, decoded.Values);
                }
            }

            if (rep > 0)
            {
                decodeSeconds.Add(sw.Elapsed.TotalSeconds);
            }
        }

        // Fusion reads every chunk through the codec: the blobs are stored as they are, so the evaluator's puts find
        // them and each fusion decodes them (prefix blocks it stores are encoded on the way).
        var blobStore = new InMemoryBlobStore();
        for (var e = 0; e < entries.Count; e++)
        {
            await blobStore.PutAsync(entries[e].Key, blobs[e], ct).ConfigureAwait(false);
        }

        var store = new ContainerKvStore(blobStore, expected, new ContainerKvStoreOptions { Codec = codec, Profiles = profiles });
        IReadOnlyList<FusionModeResult> quality;
        await using (var engine = new FusionEngine(model, store))
        {
            quality = await new FusionEvaluator(engine, evaluation).EvaluateAsync(cases, modes, null, ct).ConfigureAwait(false);
        }

        var fp16 = entries.Sum(e => e.ByteSize);
        return (new CodecBenchmarkRow
        {
            Codec = codec,
            StatisticsSource = profile is not null ? CodecBenchmarkRow.ProfileSource : codec.Kind == KvCodecKind.CacheGen ? "inline" : "none",
            Tuning = tuning,
            ProfileBytes = profile?.ByteSize,
            Entries = entries.Count,
            Values = fp16 / 2,
            Fp16Bytes = fp16,
            TotalBytes = totalBytes,
            HeaderBytes = headerBytes,
            PayloadBytes = payloadBytes,
            StatisticsBytes = statisticsBytes,
            SectionFramingBytes = framingBytes,
            BitExact = bitExact,
            EncodeMbPerSecondPerCore = fp16 / Megabyte / EngineBenchmark.Median(encodeSeconds),
            DecodeMbPerSecondPerCore = fp16 / Megabyte / EngineBenchmark.Median(decodeSeconds),
            Reuse = CodecFusionQuality.From(quality[0]),
            Blend = CodecFusionQuality.From(quality[1]),
        }, null);
    }

    private static bool SameBits(ReadOnlySpan<Half> a, ReadOnlySpan<Half> b) =>
        MemoryMarshal.Cast<Half, ushort>(a).SequenceEqual(MemoryMarshal.Cast<Half, ushort>(b));

    /// <summary>
    /// Writes the report's fields into the JSON object <paramref name="writer"/> has open: <c>codecs</c> (one object
    /// per codec: <c>codec</c>, <c>ratio_to_fp16</c>, <c>bits_per_value</c>, <c>statistics_share</c>,
    /// <c>encode_mb_s_per_core</c>, <c>decode_mb_s_per_core</c>, <c>reuse_mean_kl</c>, <c>blend_mean_kl</c>, the
    /// top-1 and greedy fields and the byte counts), <c>baseline</c> (the uncompressed quality) and <c>skipped</c>.
    /// Other tools read these names: never rename them.
    /// </summary>
    public static void WriteJson(Utf8JsonWriter writer, CodecBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(report);
        writer.WriteNumber("cases", report.Cases);
        writer.WriteNumber("chunk_caches", report.Entries);
        writer.WriteNumber("calibration_chunk_caches", report.CalibrationEntries);
        writer.WriteNumber("fp16_bytes", report.Fp16Bytes);
        writer.WriteNumber("repetitions", report.Repetitions);
        writer.WriteString("reuse_mode", report.ReuseMode);
        writer.WriteString("blend_mode", report.BlendMode);
        writer.WriteString("speed_unit", "fp16-equivalent MB (10^6 bytes) per second on one core, median of the timed passes");
        writer.WriteStartArray("codecs");
        foreach (var r in report.Codecs)
        {
            writer.WriteStartObject();
            writer.WriteString("codec", r.CodecName);
            writer.WriteString("statistics_source", r.StatisticsSource);
            if (r.Tuning is { } t)
            {
                writer.WriteString("variant", t.ToString());
            }
            if (r.ProfileBytes is { } profileBytes)
            {
                writer.WriteNumber("profile_bytes", profileBytes);
            }
            else
            {
                writer.WriteNull("profile_bytes");
            }

            writer.WriteBoolean("lossless", r.Codec.IsLossless);
            writer.WriteBoolean("bit_exact", r.BitExact);
            Number(writer, "ratio_to_fp16", r.RatioToFp16, 4);
            Number(writer, "bits_per_value", r.BitsPerValue, 4);
            Number(writer, "statistics_share", r.StatisticsShare, 4);
            Number(writer, "encode_mb_s_per_core", r.EncodeMbPerSecondPerCore, 2);
            Number(writer, "decode_mb_s_per_core", r.DecodeMbPerSecondPerCore, 2);
            WriteQuality(writer, r.Reuse, r.Blend);
            writer.WriteNumber("entries", r.Entries);
            writer.WriteNumber("values", r.Values);
            writer.WriteNumber("fp16_bytes", r.Fp16Bytes);
            writer.WriteNumber("bytes", r.TotalBytes);
            writer.WriteNumber("header_bytes", r.HeaderBytes);
            writer.WriteNumber("payload_bytes", r.PayloadBytes);
            writer.WriteNumber("statistics_bytes", r.StatisticsBytes);
            writer.WriteNumber("section_framing_bytes", r.SectionFramingBytes);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteStartObject("baseline");
        writer.WriteString("codec", "none (uncompressed fp16 in memory)");
        WriteQuality(writer, report.BaselineReuse, report.BaselineBlend);
        writer.WriteEndObject();
        writer.WriteStartArray("skipped");
        foreach (var s in report.Skipped)
        {
            writer.WriteStartObject();
            writer.WriteString("codec", s.Codec.ToString());
            writer.WriteString("reason", s.Reason);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static void WriteQuality(Utf8JsonWriter writer, CodecFusionQuality reuse, CodecFusionQuality blend)
    {
        Number(writer, "reuse_mean_kl", reuse.MeanKl, 6);
        Number(writer, "reuse_top1_agreement", reuse.Top1Agreement, 4);
        Number(writer, "reuse_greedy_match", reuse.GreedyMatch, 4);
        Number(writer, "blend_mean_kl", blend.MeanKl, 6);
        Number(writer, "blend_top1_agreement", blend.Top1Agreement, 4);
        Number(writer, "blend_greedy_match", blend.GreedyMatch, 4);
    }

    /// <summary>JSON has no NaN or infinity: a value that is not finite is written as null.</summary>
    private static void Number(Utf8JsonWriter writer, string name, double value, int digits)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumber(name, Math.Round(value, digits));
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
