using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tests.Container;

/// <summary>
/// The container test vectors in docs/test-vectors/containers/ (README.md there): by default the synthetic inputs
/// are re-encoded and must give the committed files byte for byte, and the committed files must decode to the
/// manifest's header fields, sections and decoded checksum. With KVF_WRITE_TEST_VECTORS=1 the files and the manifest
/// are rewritten instead (after a deliberate format change), then checked the same way.
/// </summary>
public sealed class KvContainerTestVectorTests
{
    /// <summary>The environment variable that turns the checker into the generator.</summary>
    public const string WriteVariable = "KVF_WRITE_TEST_VECTORS";

    private const string Model = "946484eb195bda404a4661999618030d7146ec263a962b584cd4ec38b205323f";
    private const string Tokenizer = "905ec451befb6560e7f841540178d2f6fd6aab8276f26ffa3429ebd2e599f20b";
    private const string Variant = "sink:bos";
    private const int Layers = 2;
    private const int Heads = 2;
    private const int HeadDim = 8;
    private const int Tokens = 6;
    private const int HiddenSize = 16;

    /// <summary>One vector: its file name, codec and what the container carries.</summary>
    private sealed record VectorCase(string File, KvCodecSpec Codec, bool TokenIds, bool HiddenStates, string Description, int Tokens = Tokens, bool OddTokensZero = false);

    private static readonly VectorCase[] Cases =
    [
        new("raw.kvc", KvCodecSpec.Raw, false, false, "raw, no token ids"),
        new("lz4.kvc", KvCodecSpec.Lz4, false, false, "lz4, no token ids"),
        new("fp8.kvc", KvCodecSpec.Fp8, false, false, "fp8 e4m3fn, no token ids"),
        new("cachegen-1.kvc", KvCodecSpec.CacheGen(1), false, false, "cachegen:1, inline statistics, no token ids"),
        new("cachegen-2.kvc", KvCodecSpec.CacheGen(2), false, false, "cachegen:2, inline statistics, no token ids"),
        new("cachegen-3.kvc", KvCodecSpec.CacheGen(3), false, false, "cachegen:3, inline statistics, no token ids"),
        new("raw-token-ids.kvc", KvCodecSpec.Raw, true, false, "raw, with token ids"),
        new("raw-ecache.kvc", KvCodecSpec.Raw, true, true, "raw, with token ids and E-cache sections for layers 0 and 1"),
        new("cachegen-2-ecache.kvc", KvCodecSpec.CacheGen(2), true, true, "cachegen:2, with token ids and E-cache sections (coded lz4)"),

        // The noisy planes above are too short for an LZ4 block to pay off, so they are all verbatim; zeroing every
        // odd token (8 zero values in a row per head) makes the planes LZ4 blocks, so that path has a vector too.
        new("lz4-blocks.kvc", KvCodecSpec.Lz4, false, false, "lz4, 16 tokens, odd tokens all zero, so that the planes are LZ4 blocks", 16, true),
    ];

    [Fact]
    public void Committed_containers_are_reproduced_and_decode_to_the_manifest()
    {
        var dir = VectorsDirectory();
        var generated = Cases.Select(c => (Case: c, Bytes: Encode(c))).ToList();
        var manifest = Manifest(generated);

        // Byte for byte: the encoders still write what is committed.
        foreach (var (c, bytes) in generated)
        {
            var path = Path.Combine(dir, c.File);
            Assert.True(File.Exists(path), $"{path} is missing; regenerate with {WriteVariable}=1 (docs/test-vectors/README.md).");
            var committed = File.ReadAllBytes(path);
            Assert.True(bytes.AsSpan().SequenceEqual(committed), $"{c.File}: the writer no longer produces the committed bytes ({bytes.Length} vs {committed.Length} bytes).");
        }

        Assert.Equal(Encoding.UTF8.GetString(manifest), Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(dir, "containers.json"))));
        Assert.Equal(Cases.Length, Directory.GetFiles(dir, "*.kvc").Length);
    }

    [Fact]
    public void Committed_containers_match_their_manifest_entries()
    {
        var dir = VectorsDirectory();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "containers.json")));
        var root = doc.RootElement;
        Assert.Equal(KvContainerFormat.Version, root.GetProperty("format_version").GetInt32());
        var entries = root.GetProperty("containers").EnumerateArray().ToList();
        Assert.Equal(Cases.Length, entries.Count);
        foreach (var e in entries)
        {
            var name = e.GetProperty("file").GetString()!;
            var blob = File.ReadAllBytes(Path.Combine(dir, name));
            Assert.Equal(e.GetProperty("file_size").GetInt64(), blob.LongLength);

            // Header fields, as the reader parses them from the committed file.
            var h = KvContainerReader.ReadHeader(blob);
            var hj = e.GetProperty("header");
            Assert.Equal(hj.GetProperty("codec").GetString(), h.Codec.ToString());
            Assert.Equal(e.GetProperty("codec").GetString(), h.Codec.ToString());
            Assert.Equal(hj.GetProperty("header_length").GetInt32(), (int)BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(12)));
            Assert.Equal(hj.GetProperty("entry_kind").GetInt32(), (int)h.Key.Kind);
            Assert.Equal(hj.GetProperty("dtype").GetInt32(), blob[17]);
            Assert.Equal(hj.GetProperty("codec_kind").GetInt32(), (int)h.Codec.Kind);
            Assert.Equal(hj.GetProperty("codec_level").GetInt32(), h.Codec.Level);
            Assert.Equal(hj.GetProperty("chunk_id").GetString(), h.Key.Id);
            Assert.Equal(hj.GetProperty("variant").GetString(), h.Key.Variant);
            Assert.Equal(hj.GetProperty("model_fingerprint").GetString(), h.ModelFingerprint);
            Assert.Equal(hj.GetProperty("tokenizer_fingerprint").GetString(), h.TokenizerFingerprint);
            Assert.Equal(hj.GetProperty("token_count").GetInt32(), h.TokenCount);
            Assert.Equal(hj.GetProperty("layers").GetInt32(), h.LayerCount);
            Assert.Equal(hj.GetProperty("kv_heads").GetInt32(), h.KvHeads);
            Assert.Equal(hj.GetProperty("head_dim").GetInt32(), h.HeadDim);
            Assert.Equal(hj.GetProperty("codec_parameters_hex").GetString(), Convert.ToHexStringLower(h.CodecParameters.Span));
            var ids = hj.GetProperty("token_ids");
            Assert.Equal(ids.ValueKind == JsonValueKind.Null ? null : ids.EnumerateArray().Select(t => t.GetInt32()).ToArray(), h.TokenIds?.ToArray());
            Assert.Equal(hj.GetProperty("hidden_size").GetInt32(), h.HiddenSize);
            Assert.Equal(hj.GetProperty("hidden_state_layers").EnumerateArray().Select(t => t.GetInt32()).ToArray(), h.HiddenStateLayers.ToArray());
            var end = 16 + hj.GetProperty("header_length").GetInt32();
            Assert.Equal(e.GetProperty("header_checksum").GetString(), Hex64(XxHash64.HashToUInt64(blob.AsSpan(0, end))));
            Assert.Equal(e.GetProperty("header_checksum").GetString(), Hex64(BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(end))));

            // Sections, walked by hand from the documented framing (not through the reader).
            var sections = e.GetProperty("sections").EnumerateArray().ToList();
            Assert.Equal(h.SectionCount, sections.Count);
            var at = end + 8;
            var seed = BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(end));
            for (var i = 0; i < sections.Count; i++)
            {
                var s = sections[i];
                Assert.Equal(i, (int)BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(at)));
                Assert.Equal(s.GetProperty("kind").GetInt32(), blob[at + 4]);
                Assert.Equal(s.GetProperty("offset").GetInt64(), at);
                var length = (long)BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(at + 8));
                Assert.Equal(s.GetProperty("payload_length").GetInt64(), length);
                var payload = blob.AsSpan(at + 24, (int)length);
                Assert.Equal(s.GetProperty("payload_checksum").GetString(), Hex64(BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(at + 16))));
                Assert.Equal(s.GetProperty("payload_checksum").GetString(), Hex64(XxHash64.HashToUInt64(payload, unchecked((long)seed))));
                at += 24 + (int)length;
            }

            Assert.Equal(blob.Length, at);

            // Decoded values.
            var contents = KvContainerReader.ReadWithHiddenStates(blob);
            Assert.Equal(e.GetProperty("decoded_xxhash64").GetString(), DecodedChecksum(contents.Entry, contents.HiddenStates));
        }
    }

    [Fact]
    public void Lossless_vectors_decode_to_the_synthetic_input()
    {
        var dir = VectorsDirectory();
        foreach (var c in Cases.Where(c => c.Codec.IsLossless))
        {
            var (entry, hidden) = Input(c);
            var contents = KvContainerReader.ReadWithHiddenStates(File.ReadAllBytes(Path.Combine(dir, c.File)));
            Assert.Equal(DecodedChecksum(entry, hidden), DecodedChecksum(contents.Entry, contents.HiddenStates));
            Assert.True(entry.Keys.SequenceEqual(contents.Entry.Keys), $"{c.File}: K differs from the input");
            Assert.True(entry.Values.SequenceEqual(contents.Entry.Values), $"{c.File}: V differs from the input");
        }
    }

    [Fact]
    public void Synthetic_input_is_the_documented_formula()
    {
        // Pins the generator so that an accidental change shows here, not only as changed container bytes.
        var (entry, _) = Input(Cases[0]);
        Assert.Equal((Half)(-0.5f), entry.Keys[0]); // Mix(0) = 0: noise -0.5, trend 0.25·sin 0 = 0
        Assert.Equal((Half)40f, entry.Keys[(4 * HeadDim) + 5]); // the spike: layer 0, head 0, token 4, channel 5
        Assert.Equal((Half)(-40f), entry.Values[(4 * HeadDim) + 5]);
        Assert.Equal(Synth(0, 0, 1, 2, 3), entry.Keys[(1 * Tokens * HeadDim) + (2 * HeadDim) + 3]);
        Assert.Equal(Synth(1, 1, 1, 5, 7), entry.Values[^1]);
        Assert.NotEqual(entry.Keys[0], entry.Values[0]);
    }

    /// <summary>
    /// The decoded-values checksum of the manifest: xxHash64 (seed 0) over the decoded fp16 values as little-endian
    /// 2-byte words, all K ([layer][kv_head][token][head_dim]), then all V (same layout), then each E-cache layer
    /// ([token][hidden]) in header order; 16 lowercase hex digits of the u64, most significant first.
    /// </summary>
    internal static string DecodedChecksum(CachedKv entry, KvHiddenStates? hidden)
    {
        var hash = new XxHash64();
        Append(hash, entry.Keys);
        Append(hash, entry.Values);
        if (hidden is not null)
        {
            for (var i = 0; i < hidden.Layers.Count; i++)
            {
                Append(hash, hidden.State(i));
            }
        }

        return Hex64(hash.GetCurrentHashAsUInt64());
    }

    private static void Append(XxHash64 hash, ReadOnlySpan<Half> values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), BitConverter.HalfToUInt16Bits(values[i]));
        }

        hash.Append(bytes);
    }

    private static string Hex64(ulong value) => value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    private static byte[] Encode(VectorCase c)
    {
        var (entry, hidden) = Input(c);
        var options = new KvContainerWriteOptions { IncludeTokenIds = c.TokenIds, MaxDegreeOfParallelism = 1 };
        return KvContainerWriter.ToArray(entry, hidden, c.Codec, options);
    }

    /// <summary>The synthetic entry: token ids 1000 + 37·t, values from <see cref="Synth"/>, E-cache for layers 0 and 1.</summary>
    private static (CachedKv Entry, KvHiddenStates? Hidden) Input(VectorCase c)
    {
        var tokens = c.Tokens;
        var ids = Enumerable.Range(0, tokens).Select(t => 1000 + (37 * t)).ToArray();
        var key = new CacheKey(CacheEntryKind.Chunk, ChunkId.Compute(Model, Tokenizer, ids).ToString(), Variant);
        var n = Layers * Heads * tokens * HeadDim;
        var keys = new Half[n];
        var values = new Half[n];
        var i = 0;
        for (var l = 0; l < Layers; l++)
        {
            for (var h = 0; h < Heads; h++)
            {
                for (var t = 0; t < tokens; t++)
                {
                    for (var d = 0; d < HeadDim; d++, i++)
                    {
                        var zero = c.OddTokensZero && (t & 1) == 1;
                        keys[i] = zero ? (Half)0f : Synth(0, l, h, t, d);
                        values[i] = zero ? (Half)0f : Synth(1, l, h, t, d);
                    }
                }
            }
        }

        var entry = new CachedKv(key, Model, Tokenizer, ids, Layers, Heads, HeadDim, keys, values);
        if (!c.HiddenStates)
        {
            return (entry, null);
        }

        int[] layers = [0, 1];
        var states = layers.Select(l => Enumerable.Range(0, tokens * HiddenSize)
            .Select(j => HashToHalf(Mix((uint)(0x4000_0000 | (l << 20) | j)))).ToArray()).ToList();
        return (entry, new KvHiddenStates(tokens, HiddenSize, layers, states));
    }

    /// <summary>
    /// One synthetic value (docs/test-vectors/README.md): a smooth token trend plus hashed noise, channel 3 of every
    /// head 8× larger (an outlier channel, as real K has), and one spike of 40 at token 4, channel 5 of head 0.
    /// </summary>
    private static Half Synth(int kind, int layer, int head, int token, int dim)
    {
        var noise = (float)HashToHalf(Mix((uint)((kind << 24) | (layer << 16) | (head << 12) | (token << 4) | dim)));
        var trend = 0.25f * MathF.Sin((0.7f * token) + dim + (2 * head) + layer);
        var v = trend + noise;
        if (dim == 3)
        {
            v *= 8;
        }

        if (head == 0 && token == 4 && dim == 5)
        {
            v = kind == 0 ? 40f : -40f;
        }

        return (Half)v;
    }

    /// <summary>A 32-bit integer hash (lowbias32), so that the inputs do not depend on System.Random.</summary>
    private static uint Mix(uint x)
    {
        x ^= x >> 16;
        x *= 0x7feb352d;
        x ^= x >> 15;
        x *= 0x846ca68b;
        x ^= x >> 16;
        return x;
    }

    /// <summary>Maps a hash to [-0.5, 0.5) in steps of 2^-10, exactly representable in fp16.</summary>
    private static Half HashToHalf(uint hash) => (Half)(((int)(hash >> 22) - 512) / 1024f);

    private static byte[] Manifest(List<(VectorCase Case, byte[] Bytes)> generated)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            w.WriteStartObject();
            w.WriteString("description", "KvFusion container test vectors; see README.md one folder up (section Containers) and docs/kv-container.md.");
            w.WriteNumber("format_version", KvContainerFormat.Version);
            w.WriteString("decoded_checksum", "xxHash64 seed 0 over the decoded fp16 values as LE u16: all K [layer][kv_head][token][head_dim], then all V, then each E-cache layer [token][hidden]; hex of the u64");
            w.WriteStartArray("containers");
            foreach (var (c, bytes) in generated)
            {
                var inspection = KvContainerReader.Inspect(bytes);
                var h = inspection.Header;
                var contents = KvContainerReader.ReadWithHiddenStates(bytes);
                w.WriteStartObject();
                w.WriteString("file", c.File);
                w.WriteString("description", c.Description);
                w.WriteString("codec", c.Codec.ToString());
                w.WriteNumber("file_size", bytes.Length);
                w.WriteStartObject("header");
                w.WriteNumber("header_length", BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12)));
                w.WriteNumber("entry_kind", (int)h.Key.Kind);
                w.WriteNumber("dtype", KvContainerFormat.DTypeFp16);
                w.WriteNumber("codec_kind", (int)h.Codec.Kind);
                w.WriteNumber("codec_level", h.Codec.Level);
                w.WriteString("codec", h.Codec.ToString());
                w.WriteNumber("token_count", h.TokenCount);
                w.WriteNumber("layers", h.LayerCount);
                w.WriteNumber("kv_heads", h.KvHeads);
                w.WriteNumber("head_dim", h.HeadDim);
                w.WriteString("chunk_id", h.Key.Id);
                w.WriteString("variant", h.Key.Variant);
                w.WriteString("model_fingerprint", h.ModelFingerprint);
                w.WriteString("tokenizer_fingerprint", h.TokenizerFingerprint);
                w.WriteString("codec_parameters_hex", Convert.ToHexStringLower(h.CodecParameters.Span));
                if (h.TokenIds is null)
                {
                    w.WriteNull("token_ids");
                }
                else
                {
                    w.WriteStartArray("token_ids");
                    foreach (var t in h.TokenIds)
                    {
                        w.WriteNumberValue(t);
                    }

                    w.WriteEndArray();
                }

                w.WriteNumber("hidden_size", h.HiddenSize);
                w.WriteStartArray("hidden_state_layers");
                foreach (var l in h.HiddenStateLayers)
                {
                    w.WriteNumberValue(l);
                }

                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteNumber("header_region_bytes", inspection.HeaderBytes);
                w.WriteString("header_checksum", Hex64(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((int)inspection.HeaderBytes - 8))));
                w.WriteStartArray("sections");
                foreach (var s in inspection.Sections)
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", s.Index);
                    w.WriteNumber("layer", s.Layer);
                    w.WriteNumber("kind", (int)s.Kind);
                    w.WriteNumber("offset", s.Offset);
                    w.WriteNumber("payload_length", s.PayloadBytes);
                    w.WriteString("payload_checksum", Hex64(s.Checksum));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteString("decoded_xxhash64", DecodedChecksum(contents.Entry, contents.HiddenStates));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return [.. buffer.WrittenSpan, (byte)'\n'];
    }

    /// <summary>Written once per test run in write mode, before any test of this class reads the folder (whatever their order).</summary>
    private static readonly Lazy<string> Folder = new(() =>
    {
        var dir = FindVectorsDirectory();
        if (Environment.GetEnvironmentVariable(WriteVariable) == "1")
        {
            var generated = Cases.Select(c => (Case: c, Bytes: Encode(c))).ToList();
            var manifest = Manifest(generated);
            Directory.CreateDirectory(dir);
            foreach (var stale in Directory.GetFiles(dir, "*.kvc"))
            {
                File.Delete(stale);
            }

            foreach (var (c, bytes) in generated)
            {
                File.WriteAllBytes(Path.Combine(dir, c.File), bytes);
            }

            File.WriteAllBytes(Path.Combine(dir, "containers.json"), manifest);
        }

        return dir;
    });

    /// <summary>The vectors folder; in write mode (KVF_WRITE_TEST_VECTORS=1) its files have just been rewritten.</summary>
    private static string VectorsDirectory() => Folder.Value;

    /// <summary>docs/test-vectors/containers/ of the repository: walks up from the test binaries to the folder holding the .sln.</summary>
    private static string FindVectorsDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (dir.GetFiles("*.sln").Length > 0 || dir.GetFiles("*.slnx").Length > 0)
            {
                return Path.Combine(dir.FullName, "docs", "test-vectors", "containers");
            }
        }

        throw new DirectoryNotFoundException($"No .sln above {AppContext.BaseDirectory}; the test vectors live in docs/test-vectors/containers/ of the repository.");
    }
}
