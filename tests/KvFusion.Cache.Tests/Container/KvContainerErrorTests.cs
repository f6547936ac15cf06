using System.Buffers.Binary;
using System.IO.Pipelines;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using static KvFusion.Cache.Tests.Container.ContainerBytes;
using static KvFusion.Cache.Tests.Container.ContainerTestData;

namespace KvFusion.Cache.Tests.Container;

public sealed class KvContainerErrorTests
{
    private static readonly CachedKv Sample = Entry(layers: 3, heads: 2, tokens: 5, headDim: 8);
    private static readonly byte[] Blob = KvContainerWriter.ToArray(Sample, Ecache(Sample), KvCodecSpec.Raw);

    private static KvHiddenStates Ecache(CachedKv entry) => Hidden(entry, 12, [0, 2]);

    /// <summary>Reads through every reader (span, stream, one byte per read, pipe) and asserts each fails the same way.</summary>
    private static async Task<KvContainerException> FailsEverywhere(byte[] blob, KvContainerError error, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null)
    {
        var span = Assert.Throws<KvContainerException>(() => KvContainerReader.Read(blob, expected, options));
        Assert.Equal(error, span.Error);
        Assert.DoesNotContain('\n', span.Message);
        foreach (var degree in new[] { 1, 3 })
        {
            var o = (options ?? KvContainerReadOptions.Default) with { MaxDegreeOfParallelism = degree };
            var stream = await Assert.ThrowsAsync<KvContainerException>(async () => await KvContainerReader.ReadAsync(new MemoryStream(blob), expected, o));
            Assert.Equal(error, stream.Error);
            var trickle = await Assert.ThrowsAsync<KvContainerException>(async () => await KvContainerReader.ReadAsync(new TrickleStream(blob, 3), expected, o));
            Assert.Equal(error, trickle.Error);
            var pipe = await Assert.ThrowsAsync<KvContainerException>(async () => await KvContainerReader.ReadAsync(PipeReader.Create(new MemoryStream(blob)), expected, o));
            Assert.Equal(error, pipe.Error);
            if (error != KvContainerError.TrailingData)
            {
                // A stream cannot say how many bytes trail without reading them all; everything else reads alike.
                Assert.Equal(span.Message, stream.Message);
                Assert.Equal(span.Offset, stream.Offset);
            }
        }

        return span;
    }

    [Fact]
    public async Task Truncation_at_every_section_boundary_and_inside_each_part_is_reported()
    {
        var sections = KvContainerReader.Inspect(Blob).Sections;
        var cuts = new SortedSet<int> { 0, 1, 7, 8, 15, 16, 17, HeaderEnd(Blob), HeaderEnd(Blob) + 7 };
        foreach (var s in sections)
        {
            cuts.Add((int)s.Offset);
            cuts.Add((int)s.Offset + 1);
            cuts.Add((int)s.Offset + 23);
            cuts.Add((int)s.Offset + 24);
            cuts.Add((int)(s.Offset + 24 + (s.PayloadBytes / 2)));
            cuts.Add((int)(s.Offset + 24 + s.PayloadBytes - 1));
        }

        foreach (var cut in cuts)
        {
            var e = await FailsEverywhere(Blob[..cut], KvContainerError.Truncated);
            Assert.Equal(cut, e.Offset);
        }

        var message = Assert.Throws<KvContainerException>(() => KvContainerReader.Read(Blob.AsMemory(0, (int)sections[3].Offset + 30))).Message;
        Assert.Contains("section 3 (layer 1 V)", message);
    }

    [Fact]
    public async Task Every_prefix_of_a_container_is_truncated()
    {
        var blob = KvContainerWriter.ToArray(Entry(layers: 2, heads: 1, tokens: 2, headDim: 2), KvCodecSpec.Raw);
        for (var cut = 0; cut < blob.Length; cut++)
        {
            Assert.Equal(KvContainerError.Truncated, Assert.Throws<KvContainerException>(() => KvContainerReader.Read(blob.AsMemory(0, cut))).Error);
            var e = await Assert.ThrowsAsync<KvContainerException>(async () => await KvContainerReader.ReadAsync(new TrickleStream(blob[..cut])));
            Assert.Equal(KvContainerError.Truncated, e.Error);
        }
    }

    [Fact]
    public async Task Bad_magic_is_reported()
    {
        byte[] blob = [.. Blob[..4], .. Blob[5..]]; // what a CRLF to LF conversion leaves
        var e = await FailsEverywhere(blob, KvContainerError.BadMagic);
        Assert.Equal(0, e.Offset);
        await FailsEverywhere("{\"not\": \"a container\"}"u8.ToArray(), KvContainerError.BadMagic);
        await FailsEverywhere([0x4B, 0x56, 0x47], KvContainerError.BadMagic);
    }

    [Fact]
    public async Task Unsupported_version_and_flags_are_reported()
    {
        var blob = (byte[])Blob.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(8), 2);
        Assert.Contains("version 2", (await FailsEverywhere(blob, KvContainerError.UnsupportedVersion)).Message);
        blob = (byte[])Blob.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(10), 0x0100);
        Assert.Equal(10, (await FailsEverywhere(blob, KvContainerError.UnsupportedVersion)).Offset);
    }

    [Fact]
    public async Task A_changed_header_byte_fails_the_header_checksum()
    {
        foreach (var field in Fields(Blob).Where(f => f.Offset >= 16))
        {
            var blob = (byte[])Blob.Clone();
            blob[field.Offset + field.Length - 1] ^= 0x10;
            var e = await FailsEverywhere(blob, KvContainerError.HeaderChecksumMismatch);
            Assert.Contains("stored 0x", e.Message);
        }
    }

    [Fact]
    public async Task A_changed_payload_or_stored_checksum_fails_the_section_checksum()
    {
        var sections = KvContainerReader.Inspect(Blob).Sections;
        foreach (var s in sections)
        {
            var blob = (byte[])Blob.Clone();
            blob[(int)s.Offset + 24 + (int)(s.PayloadBytes / 3)] ^= 1;
            var e = await FailsEverywhere(blob, KvContainerError.SectionChecksumMismatch);
            Assert.StartsWith($"section {s.Index} (", e.Message);
            blob = (byte[])Blob.Clone();
            blob[(int)s.Offset + 16] ^= 0x80;
            await FailsEverywhere(blob, KvContainerError.SectionChecksumMismatch);
        }
    }

    [Fact]
    public async Task The_first_bad_section_is_reported_by_every_reader()
    {
        var sections = KvContainerReader.Inspect(Blob).Sections;
        var blob = (byte[])Blob.Clone();
        blob[(int)sections[6].Offset + 30] ^= 1;
        blob[(int)sections[2].Offset + 30] ^= 1;
        Assert.StartsWith("section 2 (layer 1 K)", (await FailsEverywhere(blob, KvContainerError.SectionChecksumMismatch)).Message);
    }

    [Fact]
    public async Task Sections_of_another_container_do_not_verify()
    {
        // Same shape, other values and tokens: swapping in its sections must not give a valid container.
        var other = KvContainerWriter.ToArray(Entry(layers: 3, heads: 2, tokens: 5, headDim: 8, seed: 99), Ecache(Sample), KvCodecSpec.Raw);
        var end = HeaderEnd(Blob) + 8;
        Assert.Equal(end, HeaderEnd(other) + 8);
        byte[] spliced = [.. Blob[..end], .. other[end..]];
        Assert.StartsWith("section 0 (layer 0 K): checksum mismatch", (await FailsEverywhere(spliced, KvContainerError.SectionChecksumMismatch)).Message);
    }

    public static TheoryData<string> LimitNames() =>
        ["MaxHeaderBytes", "MaxTokens", "MaxLayers", "MaxKvHeads", "MaxHeadDim", "MaxHiddenSize", "MaxSectionBytes", "MaxTotalBytes"];

    [Theory]
    [MemberData(nameof(LimitNames))]
    public async Task Each_limit_is_enforced(string limit)
    {
        var header = KvContainerReader.ReadHeader(Blob);
        var sectionBytes = KvContainerReader.Inspect(Blob).Sections.Max(s => s.PayloadBytes);
        var d = KvContainerLimits.Default;
        var limits = limit switch
        {
            "MaxHeaderBytes" => d with { MaxHeaderBytes = HeaderEnd(Blob) - 17 },
            "MaxTokens" => d with { MaxTokens = header.TokenCount - 1 },
            "MaxLayers" => d with { MaxLayers = header.LayerCount - 1 },
            "MaxKvHeads" => d with { MaxKvHeads = header.KvHeads - 1 },
            "MaxHeadDim" => d with { MaxHeadDim = header.HeadDim - 1 },
            "MaxHiddenSize" => d with { MaxHiddenSize = header.HiddenSize - 1 },
            "MaxSectionBytes" => d with { MaxSectionBytes = sectionBytes - 1 },
            _ => d with { MaxTotalBytes = Blob.Length - 1 },
        };
        var options = new KvContainerReadOptions { Limits = limits };
        var e = await FailsEverywhere(Blob, KvContainerError.LimitExceeded, options: options);
        Assert.Contains("limit", e.Message);
        Assert.Equal(KvContainerError.LimitExceeded, Assert.Throws<KvContainerException>(() => KvContainerReader.Inspect(Blob, options)).Error);
    }

    [Fact]
    public async Task The_decoded_size_is_limited_before_anything_is_allocated()
    {
        // The container itself is small enough; the values it decodes to are not.
        var options = new KvContainerReadOptions { Limits = KvContainerLimits.Default with { MaxTotalBytes = Sample.ByteSize } };
        var e = await FailsEverywhere(Blob, KvContainerError.LimitExceeded, options: options);
        Assert.Contains("decodes to", e.Message);
    }

    [Fact]
    public void Limits_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => KvContainerLimits.Default with { MaxTokens = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => KvContainerLimits.Default with { MaxSectionBytes = long.MaxValue });
        Assert.Throws<ArgumentOutOfRangeException>(() => KvContainerLimits.Default with { MaxTotalBytes = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvContainerReadOptions { MaxDegreeOfParallelism = 0 });
        Assert.Equal(16 << 20, KvContainerLimits.Default.MaxHeaderBytes);
        Assert.Equal(64L << 30, KvContainerLimits.Default.MaxTotalBytes);
    }

    [Fact]
    public async Task Trailing_bytes_are_reported()
    {
        var e = await FailsEverywhere([.. Blob, 0], KvContainerError.TrailingData);
        Assert.Equal(Blob.Length, e.Offset);
        await FailsEverywhere([.. Blob, .. Blob], KvContainerError.TrailingData);
    }

    [Fact]
    public async Task An_unknown_codec_is_reported()
    {
        var e = await FailsEverywhere(Reseal(SetU8(Blob, "codec kind", 200)), KvContainerError.UnknownCodec);
        Assert.Contains("200", e.Message);
        await FailsEverywhere(Reseal(SetU8(Blob, "codec level", 1)), KvContainerError.UnknownCodec);
        Assert.Equal(KvContainerError.UnknownCodec, Assert.Throws<KvContainerException>(() => KvContainerReader.ReadHeader(Reseal(SetU8(Blob, "codec kind", 9)))).Error);
    }

    [Fact]
    public async Task A_codec_missing_from_this_build_is_an_unknown_codec()
    {
        var available = AvailableCodecs().ToHashSet();
        foreach (var spec in KvCodecSpec.All.Where(s => !available.Contains(s)))
        {
            var blob = (byte[])Blob.Clone();
            blob[Field(Blob, "codec kind").Offset] = (byte)spec.Kind;
            blob[Field(Blob, "codec level").Offset] = (byte)spec.Level;
            Reseal(blob);
            Assert.Contains(spec.ToString(), (await FailsEverywhere(blob, KvContainerError.UnknownCodec)).Message);
        }
    }

    [Fact]
    public async Task A_payload_the_codec_cannot_decode_is_a_corrupt_section()
    {
        // Section 1 loses its last value; its frame and checksum are rewritten to match, so only the codec objects.
        var s = KvContainerReader.Inspect(Blob).Sections[1];
        var at = (int)s.Offset;
        var blob = (byte[])Blob.Clone();
        blob = [.. blob[..(at + 24 + (int)s.PayloadBytes - 2)], .. blob[(at + 24 + (int)s.PayloadBytes)..]];
        BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(at + 8), (ulong)s.PayloadBytes - 2);
        ResealSectionAt(blob, at);
        var e = await FailsEverywhere(blob, KvContainerError.CorruptSection);
        Assert.IsType<KvCodecException>(e.InnerException);
        Assert.StartsWith("section 1 (layer 0 V): ", e.Message);
    }

    [Fact]
    public async Task A_payload_longer_than_the_codec_writes_is_malformed()
    {
        var s = KvContainerReader.Inspect(Blob).Sections[0];
        var at = (int)s.Offset;
        byte[] blob = [.. Blob[..(at + 24)], 0, 0, .. Blob[(at + 24)..]];
        BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(at + 8), (ulong)s.PayloadBytes + 2);
        ResealSectionAt(blob, at);
        Assert.Contains("at most", (await FailsEverywhere(blob, KvContainerError.Malformed)).Message);
    }

    [Fact]
    public async Task Frames_must_say_which_section_they_are()
    {
        var at = (int)KvContainerReader.Inspect(Blob).Sections[2].Offset;
        var blob = (byte[])Blob.Clone();
        blob[at] = 3;
        Assert.Contains("frame says section 3", (await FailsEverywhere(blob, KvContainerError.Malformed)).Message);
        blob = (byte[])Blob.Clone();
        blob[at + 4] = 1;
        Assert.Contains("kind", (await FailsEverywhere(blob, KvContainerError.Malformed)).Message);
        blob = (byte[])Blob.Clone();
        blob[at + 6] = 1;
        Assert.Contains("reserved", (await FailsEverywhere(blob, KvContainerError.Malformed)).Message);
    }

    public static TheoryData<string, uint, string> MalformedFields() => new()
    {
        { "entry kind", 2, "Entry kind 2" },
        { "stored dtype", 0, "dtype 0" },
        { "token count", 0, "0 tokens" },
        { "layer count", 0, "0 layers" },
        { "kv heads", 0, "0 KV heads" },
        { "head dim", 0, "0 head dim" },
        { "token ids flag", 2, "token ids flag is 2" },
        { "token id count", 4, "4 token ids for 5 tokens" },
        { "hidden states flag", 7, "must be 0 or 1" },
        { "hidden layer count", 0, "0 E-cache layers" },
        { "hidden layer count", 4, "4 E-cache layers" },
        { "codec parameters length", 1000, "codec parameters are 1000 bytes" },
        { "id length", 300, "limit is 256" },
    };

    [Theory]
    [MemberData(nameof(MalformedFields))]
    public async Task A_header_field_the_format_forbids_is_reported(string field, uint value, string message)
    {
        var f = Field(Blob, field);
        var blob = f.Length switch
        {
            1 => SetU8(Blob, field, (byte)value),
            2 => SetU16(Blob, f.Offset, (ushort)value),
            _ => SetU32(Blob, field, value),
        };
        var e = await FailsEverywhere(Reseal(blob), field == "id length" ? KvContainerError.LimitExceeded : KvContainerError.Malformed);
        Assert.Contains(message, e.Message);
        Assert.Equal(f.Offset, e.Offset);
    }

    [Fact]
    public async Task Hidden_layers_must_increase_and_stay_below_the_layer_count()
    {
        var f = Field(Blob, "hidden layers");
        var blob = (byte[])Blob.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(f.Offset + 4), 0);
        Assert.Contains("strictly increasing", (await FailsEverywhere(Reseal(blob), KvContainerError.Malformed)).Message);
        blob = (byte[])Blob.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(f.Offset + 4), 3);
        await FailsEverywhere(Reseal(blob), KvContainerError.Malformed);
    }

    [Fact]
    public async Task Strings_must_be_valid_utf8_without_control_characters()
    {
        var f = Field(Blob, "variant");
        var blob = (byte[])Blob.Clone();
        blob[f.Offset] = 0xFF;
        Assert.Contains("UTF-8", (await FailsEverywhere(Reseal(blob), KvContainerError.Malformed)).Message);
        blob = (byte[])Blob.Clone();
        blob[f.Offset] = (byte)'\n';
        Assert.Contains("control", (await FailsEverywhere(Reseal(blob), KvContainerError.Malformed)).Message);
        blob = (byte[])Blob.Clone();
        blob[Field(Blob, "id").Offset] = (byte)'G';
        Assert.Contains("hex", (await FailsEverywhere(Reseal(blob), KvContainerError.Malformed)).Message);
    }

    [Fact]
    public async Task A_header_longer_than_its_fields_is_malformed()
    {
        var end = HeaderEnd(Blob);
        byte[] blob = [.. Blob[..end], 0, .. Blob[end..]];
        BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(12), (uint)(end - 16 + 1));
        Assert.Contains("after its last field", (await FailsEverywhere(Reseal(blob), KvContainerError.Malformed)).Message);
    }

    [Fact]
    public async Task A_shape_other_than_expected_is_a_shape_mismatch_naming_both()
    {
        var expected = new KvContainerExpectation(Model, Tokenizer, 3, 4, 8);
        var e = await FailsEverywhere(Blob, KvContainerError.ShapeMismatch, expected);
        Assert.Contains("3 layers × 2 KV heads × head dim 8", e.Message);
        Assert.Contains("expected 3 × 4 × 8", e.Message);
        await FailsEverywhere(Blob, KvContainerError.ShapeMismatch, expected with { KvHeads = 2, LayerCount = 4 });
        await FailsEverywhere(Blob, KvContainerError.ShapeMismatch, expected with { KvHeads = 2, HeadDim = 16 });
    }

    [Fact]
    public async Task Another_model_or_tokenizer_is_a_fingerprint_mismatch_naming_both()
    {
        var other = new string('a', 64);
        var e = await FailsEverywhere(Blob, KvContainerError.FingerprintMismatch, new KvContainerExpectation(other, Tokenizer, 3, 2, 8));
        Assert.Contains(Model, e.Message);
        Assert.Contains(other, e.Message);
        e = await FailsEverywhere(Blob, KvContainerError.FingerprintMismatch, new KvContainerExpectation(Model, other, 3, 2, 8));
        Assert.Contains(Tokenizer, e.Message);
        Assert.Contains(other, e.Message);
    }

    [Fact]
    public void The_writer_rejects_what_the_format_cannot_hold()
    {
        var bad = new CachedKv(new CacheKey(CacheEntryKind.Chunk, "not-hex", "v"), Model, Tokenizer, [.. Sample.Tokens], 3, 2, 8, Sample.Keys.ToArray(), Sample.Values.ToArray());
        Assert.Throws<ArgumentException>(() => KvContainerWriter.ToArray(bad, KvCodecSpec.Raw));
        var control = new CachedKv(Sample.Key with { Variant = "a\nb" }, Model, Tokenizer, [.. Sample.Tokens], 3, 2, 8, Sample.Keys.ToArray(), Sample.Values.ToArray());
        Assert.Throws<ArgumentException>(() => KvContainerWriter.ToArray(control, KvCodecSpec.Raw));
        Assert.Throws<ArgumentException>(() => KvContainerWriter.ToArray(Sample, new KvCodecSpec(KvCodecKind.Raw, 3)));
        Assert.Throws<ArgumentException>(() => KvContainerWriter.ToArray(Sample, Hidden(Sample, 4, [3]), KvCodecSpec.Raw));
        Assert.Throws<ArgumentException>(() => KvContainerWriter.ToArray(Sample, Hidden(Entry(tokens: 6), 4, [1]), KvCodecSpec.Raw));
        Assert.Throws<ArgumentException>(() => new KvHiddenStates(5, 4, [2, 1], [new Half[20], new Half[20]]));
        Assert.Throws<ArgumentException>(() => new KvHiddenStates(5, 4, [1], [new Half[19]]));
    }

    private static byte[] SetU16(byte[] blob, int offset, ushort value)
    {
        var copy = (byte[])blob.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }
}
