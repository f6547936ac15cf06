using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Blake3;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs.Entropy;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// The entropy statistics of one cachegen level for one model: a frequency table per (layer, K/V, channel), measured
/// once on calibration chunks. A container coded with a profile names it by <see cref="Id"/> and carries no
/// statistics; decoding it needs the same profile (docs/kv-container.md, "cachegen").
/// </summary>
/// <remarks>
/// File layout (little-endian): magic <c>KVFP\r\n\x1a\n</c>, u16 version (1), u8 codec kind (3), u8 level, u16 length
/// + UTF-8 model fingerprint, u32 length + the cachegen parameters (statistics source inline), u32 channels, then for
/// each layer, K then V, each channel's table in <see cref="SymbolFrequencies"/>' serialized form, then the xxHash64
/// of everything before it. The id is the BLAKE3 of the whole file.
/// </remarks>
public sealed class CacheGenProfile
{
    /// <summary>
    /// The scale of a profile's tables. Unlike the few shared inline tables, every channel of a profile has its own
    /// table, and a section's decoder walks all of them: 2^10-slot tables keep that under the second-level cache
    /// (2^12 slots decoded 30-50% slower in bench codec) for about 0.5% more bits (measured on levels 1-3).
    /// </summary>
    public const int TableScaleBits = 10;

    /// <summary>The file name extension of stored profiles.</summary>
    public const string FileExtension = ".kvprof";

    private const ushort FormatVersion = 1;
    private const int MaxFingerprintBytes = 256;
    private const int MaxChannels = 1 << 20;
    private static ReadOnlySpan<byte> Magic => "KVFP\r\n\u001a\n"u8;

    private readonly RansRunTable[] _tables;
    private readonly byte[] _bytes;

    private CacheGenProfile(string modelFingerprint, CacheGenParameters parameters, int channels, RansRunTable[] tables, byte[] bytes)
    {
        ModelFingerprint = modelFingerprint;
        Parameters = parameters;
        Channels = channels;
        _tables = tables;
        _bytes = bytes;
        var id = new byte[CacheGenParameters.ProfileIdLength];
        Hasher.Hash(bytes, id);
        IdBytes = id;
        Id = Convert.ToHexStringLower(id);
    }

    /// <summary>The model whose caches it describes.</summary>
    public string ModelFingerprint { get; }

    /// <summary>The cachegen level.</summary>
    public int Level => Parameters.Level;

    /// <summary>Layers.</summary>
    public int LayerCount => Parameters.LayerCount;

    /// <summary>Channels per token of a section (KV heads × head dim).</summary>
    public int Channels { get; }

    /// <summary>The BLAKE3 of the serialized profile, lowercase hex: what containers name.</summary>
    public string Id { get; }

    /// <summary>Bytes of the serialized profile.</summary>
    public int ByteSize => _bytes.Length;

    internal ReadOnlyMemory<byte> IdBytes { get; }

    internal CacheGenParameters Parameters { get; }

    internal RansRunTable Table(int layer, KvSectionKind kind, int channel) =>
        _tables[(((layer * 2) + (kind == KvSectionKind.Keys ? 0 : 1)) * Channels) + channel];

    /// <summary>The serialized profile.</summary>
    public ReadOnlyMemory<byte> ToMemory() => _bytes;

    /// <summary>
    /// Measures the statistics of <paramref name="level"/> on calibration entries of one model (chunks that are not
    /// the ones later coded give an honest profile). Every symbol keeps a nonzero frequency, so any chunk is encodable.
    /// </summary>
    /// <exception cref="ArgumentException">No entries, or entries of different models or shapes.</exception>
    public static CacheGenProfile Build(IReadOnlyList<CachedKv> calibration, int level) => Build(calibration, level, null);

    /// <summary>Measures the statistics of <paramref name="level"/>, or of <paramref name="tuning"/>'s quantization
    /// when given (a profile applies only to containers of the same quantization).</summary>
    /// <exception cref="ArgumentException">No entries, or entries of different models or shapes.</exception>
    public static CacheGenProfile Build(IReadOnlyList<CachedKv> calibration, int level, CacheGenTuning? tuning)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        if (calibration.Count == 0)
            throw new ArgumentException("A profile needs at least one calibration entry.", nameof(calibration));
        var first = calibration[0];
        var parameters = tuning is null
            ? CacheGenParameters.ForLevel(level, first.LayerCount)
            : tuning.ToParameters(first.LayerCount) with { Level = level };
        var channels = first.KvHeads * first.HeadDim;
        var sections = first.LayerCount * 2;
        var counts = new long[sections * channels * SymbolFrequencies.AlphabetSize];
        foreach (var entry in calibration)
        {
            if (entry.ModelFingerprint != first.ModelFingerprint || entry.LayerCount != first.LayerCount || entry.KvHeads != first.KvHeads || entry.HeadDim != first.HeadDim)
                throw new ArgumentException("Calibration entries must all come from one model.", nameof(calibration));
            Count(entry, parameters, counts, channels);
        }

        var tables = new RansRunTable[sections * channels];
        Span<long> smoothed = stackalloc long[SymbolFrequencies.AlphabetSize];
        for (var s = 0; s < sections; s++)
        {
            var alphabet = (2 * parameters.Levels(s / 2, s % 2 == 0 ? KvSectionKind.Keys : KvSectionKind.Values)) + 1;
            for (var c = 0; c < channels; c++)
            {
                var source = counts.AsSpan(((s * channels) + c) * SymbolFrequencies.AlphabetSize, alphabet);
                // Doubling and adding one keeps every symbol of the alphabet encodable at a cost of about nothing.
                for (var a = 0; a < alphabet; a++)
                    smoothed[a] = (2 * source[a]) + 1;
                tables[(s * channels) + c] = new RansRunTable(SymbolFrequencies.FromCounts(smoothed[..alphabet], TableScaleBits));
            }
        }

        return new CacheGenProfile(first.ModelFingerprint, parameters, channels, tables, Serialize(first.ModelFingerprint, parameters, channels, tables));
    }

    /// <summary>Reads a serialized profile and verifies its checksum and every table.</summary>
    /// <exception cref="KvCodecException">The bytes are not a valid profile.</exception>
    public static CacheGenProfile Read(ReadOnlySpan<byte> bytes)
    {
        const int fixedPrefix = 8 + 2 + 1 + 1 + 2;
        if (bytes.Length < fixedPrefix + sizeof(ulong))
            throw new KvCodecException($"A cachegen profile is at least {fixedPrefix + sizeof(ulong)} bytes; this one is {bytes.Length}.");
        if (!bytes[..8].SequenceEqual(Magic))
            throw new KvCodecException("This is not a cachegen profile (bad magic).");
        var body = bytes[..^sizeof(ulong)];
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^sizeof(ulong)..]);
        var computed = XxHash64.HashToUInt64(body);
        if (stored != computed)
            throw new KvCodecException($"The cachegen profile's checksum does not match (stored 0x{stored:x16}, computed 0x{computed:x16}).");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(body[8..]);
        if (version != FormatVersion)
            throw new KvCodecException($"The cachegen profile has version {version}; this build reads version {FormatVersion}.");
        if (body[10] != (byte)KvCodecKind.CacheGen)
            throw new KvCodecException($"The profile is for codec {body[10]}, not cachegen.");
        var level = body[11];
        if (level is < 1 or > KvCodecSpec.MaxCacheGenLevel)
            throw new KvCodecException($"The profile's cachegen level is {level}; levels are 1..{KvCodecSpec.MaxCacheGenLevel}.");
        var p = 12;
        var fingerprintLength = BinaryPrimitives.ReadUInt16LittleEndian(body[p..]);
        p += 2;
        if (fingerprintLength > MaxFingerprintBytes || body.Length < p + fingerprintLength + 4)
            throw new KvCodecException("The cachegen profile ends inside its model fingerprint or names one that is too long.");
        var fingerprint = Encoding.UTF8.GetString(body.Slice(p, fingerprintLength));
        p += fingerprintLength;
        var parametersLength = BinaryPrimitives.ReadUInt32LittleEndian(body[p..]);
        p += 4;
        if (parametersLength < 6 || parametersLength > body.Length - p - 4)
            throw new KvCodecException("The cachegen profile's parameters are truncated.");
        var parameterBytes = body.Slice(p, (int)parametersLength);
        var layers = BinaryPrimitives.ReadUInt16LittleEndian(parameterBytes[4..]);
        var parameters = CacheGenParameters.Read(parameterBytes, level, layers);
        if (parameters.Statistics != CacheGenStatistics.Inline)
            throw new KvCodecException("A cachegen profile's parameters cannot themselves name a profile.");
        p += (int)parametersLength;
        if (body.Length < p + 4)
            throw new KvCodecException("The cachegen profile ends before its channel count.");
        var channels = BinaryPrimitives.ReadUInt32LittleEndian(body[p..]);
        p += 4;
        if (channels is 0 or > MaxChannels)
            throw new KvCodecException($"The cachegen profile has {channels} channels; 1..{MaxChannels} are allowed.");
        var count = layers * 2L * channels;
        // Each table takes at least 2 bytes, so a count the remaining bytes cannot hold is rejected before allocating.
        if (count * 2 > body.Length - p)
            throw new KvCodecException($"The cachegen profile is too short for {count} tables.");
        var tables = new RansRunTable[count];
        for (var i = 0; i < count; i++)
        {
            var kind = (i / channels) % 2 == 0 ? KvSectionKind.Keys : KvSectionKind.Values;
            var layer = (int)(i / channels / 2);
            SymbolFrequencies table;
            try
            {
                table = SymbolFrequencies.Read(body[p..], out var read);
                p += read;
            }
            catch (EntropyStreamException e)
            {
                throw new KvCodecException($"Table {i} of the cachegen profile is invalid: {e.Message}", e);
            }

            var alphabet = (2 * parameters.Levels(layer, kind)) + 1;
            for (var a = 0; a < SymbolFrequencies.AlphabetSize; a++)
            {
                if ((a < alphabet) != (table.Frequency((byte)a) > 0))
                    throw new KvCodecException($"Table {i} of the cachegen profile does not cover exactly the {alphabet} symbols of its layer's level.");
            }

            tables[i] = new RansRunTable(table);
        }

        if (p != body.Length)
            throw new KvCodecException($"The cachegen profile has {body.Length - p} bytes after its last table.");
        return new CacheGenProfile(fingerprint, parameters, (int)channels, tables, bytes.ToArray());
    }

    private static void Count(CachedKv entry, CacheGenParameters parameters, long[] counts, int channels)
    {
        var shape = new KvEntryShape(entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.TokenCount);
        var run = CacheGenQuantizer.RunLength(entry.TokenCount);
        var symbols = ArrayPool<byte>.Shared.Rent(channels * run);
        var scales = ArrayPool<Half>.Shared.Rent(Math.Max(channels, entry.TokenCount));
        try
        {
            for (var s = 0; s < entry.LayerCount * 2; s++)
            {
                var kind = s % 2 == 0 ? KvSectionKind.Keys : KvSectionKind.Values;
                var layer = s / 2;
                var section = shape.Section(layer, kind);
                var values = (kind == KvSectionKind.Keys ? entry.Keys : entry.Values).Slice(layer * entry.LayerStride, entry.LayerStride);
                CacheGenQuantizer.Quantize(values, section, kind == KvSectionKind.Keys ? parameters.KeyScaling : parameters.ValueScaling, parameters.Levels(layer, kind), run, scales, symbols);
                var sectionCounts = counts.AsSpan(s * channels * SymbolFrequencies.AlphabetSize, channels * SymbolFrequencies.AlphabetSize);
                for (var t = 0; t < entry.TokenCount; t++)
                {
                    var row = symbols.AsSpan(t * channels, channels);
                    for (var c = 0; c < channels; c++)
                        sectionCounts[(c * SymbolFrequencies.AlphabetSize) + row[c]]++;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(symbols);
            ArrayPool<Half>.Shared.Return(scales);
        }
    }

    private static byte[] Serialize(string fingerprint, CacheGenParameters parameters, int channels, RansRunTable[] tables)
    {
        var writer = new ArrayBufferWriter<byte>();
        writer.Write(Magic);
        Span<byte> small = stackalloc byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(small, FormatVersion);
        small[2] = (byte)KvCodecKind.CacheGen;
        small[3] = (byte)parameters.Level;
        writer.Write(small[..4]);
        var fp = Encoding.UTF8.GetBytes(fingerprint);
        BinaryPrimitives.WriteUInt16LittleEndian(small, (ushort)fp.Length);
        writer.Write(small[..2]);
        writer.Write(fp);
        var parameterBytes = new byte[parameters.Length];
        parameters.Write(parameterBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(small, (uint)parameterBytes.Length);
        writer.Write(small[..4]);
        writer.Write(parameterBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(small, (uint)channels);
        writer.Write(small[..4]);
        foreach (var table in tables)
        {
            var span = writer.GetSpan(table.Frequencies.SerializedLength);
            writer.Advance(table.Frequencies.Write(span));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(small, XxHash64.HashToUInt64(writer.WrittenSpan));
        writer.Write(small);
        return writer.WrittenSpan.ToArray();
    }
}
