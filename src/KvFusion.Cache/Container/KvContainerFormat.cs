using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Container;

/// <summary>One field of a container's preamble or header: where it is, for layout-aware tests and tools.</summary>
/// <param name="Name">The field, as docs/kv-container.md names it.</param>
/// <param name="Offset">Byte offset in the container.</param>
/// <param name="Length">Bytes.</param>
internal readonly record struct KvContainerField(string Name, int Offset, int Length);

/// <summary>
/// The byte layout of the preamble, header and section frames (docs/kv-container.md): constants, the header's
/// writer and its validating parser. Everything is little-endian.
/// </summary>
internal static class KvContainerFormat
{
    /// <summary>The format version this code writes and reads.</summary>
    public const ushort Version = 1;

    /// <summary>Magic (8), version (2), flags (2), header length (4).</summary>
    public const int PreambleLength = 16;

    /// <summary>The xxHash64 after the header.</summary>
    public const int ChecksumLength = 8;

    /// <summary>Section index (4), kind (1), reserved (3), payload length (8), payload xxHash64 (8).</summary>
    public const int FrameLength = 24;

    /// <summary>Longest id, variant or fingerprint, in UTF-8 bytes.</summary>
    public const int MaxStringBytes = 256;

    /// <summary>The stored dtype code of fp16, the canonical form.</summary>
    public const byte DTypeFp16 = 1;

    /// <summary>Offset of the first header field.</summary>
    private const int FixedFieldsLength = 20;

    /// <summary>"KVFC", CR LF, SUB, LF: text-mode line-ending or EOF mangling changes it.</summary>
    public static ReadOnlySpan<byte> Magic => [0x4B, 0x56, 0x46, 0x43, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Bytes of the preamble, the header and its checksum.</summary>
    public static int HeaderRegionLength(int headerLength) => PreambleLength + headerLength + ChecksumLength;

    /// <summary>Length of the header (between preamble and checksum) that <see cref="Write"/> writes.</summary>
    public static int MeasureHeader(KvContainerHeader header)
    {
        long length = FixedFieldsLength;
        length += StringLength(header.Key.Id) + StringLength(header.Key.Variant ?? string.Empty)
            + StringLength(header.ModelFingerprint) + StringLength(header.TokenizerFingerprint);
        length += 4 + header.CodecParameters.Length;
        length += 1 + (header.TokenIds is null ? 0 : 4 + (4L * header.TokenIds.Count));
        length += 1 + (header.HiddenStateLayers.Count == 0 ? 0 : 8 + (4L * header.HiddenStateLayers.Count));
        return length <= Array.MaxLength - 64
            ? (int)length
            : throw new ArgumentException($"The header would be {length} bytes, more than a container can hold.", nameof(header));
    }

    /// <summary>Writes preamble, header and header checksum into exactly <see cref="HeaderRegionLength"/> bytes; returns the checksum.</summary>
    public static ulong Write(KvContainerHeader header, int headerLength, Span<byte> destination)
    {
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[8..], Version);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[10..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)headerLength);
        var w = destination[PreambleLength..];
        w[0] = (byte)header.Key.Kind;
        w[1] = DTypeFp16;
        w[2] = (byte)header.Codec.Kind;
        w[3] = checked((byte)header.Codec.Level);
        BinaryPrimitives.WriteUInt32LittleEndian(w[4..], (uint)header.TokenCount);
        BinaryPrimitives.WriteUInt32LittleEndian(w[8..], (uint)header.LayerCount);
        BinaryPrimitives.WriteUInt32LittleEndian(w[12..], (uint)header.KvHeads);
        BinaryPrimitives.WriteUInt32LittleEndian(w[16..], (uint)header.HeadDim);
        var at = FixedFieldsLength;
        at += WriteString(w[at..], header.Key.Id);
        at += WriteString(w[at..], header.Key.Variant ?? string.Empty);
        at += WriteString(w[at..], header.ModelFingerprint);
        at += WriteString(w[at..], header.TokenizerFingerprint);
        BinaryPrimitives.WriteUInt32LittleEndian(w[at..], (uint)header.CodecParameters.Length);
        at += 4;
        header.CodecParameters.Span.CopyTo(w[at..]);
        at += header.CodecParameters.Length;
        if (header.TokenIds is { } ids)
        {
            w[at++] = 1;
            BinaryPrimitives.WriteUInt32LittleEndian(w[at..], (uint)ids.Count);
            at += 4;
            for (var i = 0; i < ids.Count; i++, at += 4)
            {
                BinaryPrimitives.WriteInt32LittleEndian(w[at..], ids[i]);
            }
        }
        else
        {
            w[at++] = 0;
        }

        if (header.HiddenStateLayers.Count > 0)
        {
            w[at++] = 1;
            BinaryPrimitives.WriteUInt32LittleEndian(w[at..], (uint)header.HiddenSize);
            BinaryPrimitives.WriteUInt32LittleEndian(w[(at + 4)..], (uint)header.HiddenStateLayers.Count);
            at += 8;
            for (var i = 0; i < header.HiddenStateLayers.Count; i++, at += 4)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(w[at..], (uint)header.HiddenStateLayers[i]);
            }
        }
        else
        {
            w[at++] = 0;
        }

        if (at != headerLength)
        {
            throw new InvalidOperationException($"The header measured {headerLength} bytes but {at} were written.");
        }

        var end = PreambleLength + headerLength;
        var checksum = XxHash64.HashToUInt64(destination[..end]);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[end..], checksum);
        return checksum;
    }

    /// <summary>
    /// A section payload's checksum: xxHash64 seeded with the header checksum, which ties every section to its
    /// container (sections of another container with the same shape do not verify).
    /// </summary>
    public static ulong SectionChecksum(ReadOnlySpan<byte> payload, ulong headerChecksum) => XxHash64.HashToUInt64(payload, unchecked((long)headerChecksum));

    /// <summary>Writes a section frame.</summary>
    public static void WriteFrame(Span<byte> destination, int index, KvSectionKind kind, long payloadLength, ulong checksum)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)index);
        destination[4] = (byte)kind;
        destination[5] = 0;
        destination[6] = 0;
        destination[7] = 0;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], (ulong)payloadLength);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], checksum);
    }

    /// <summary>
    /// Checks the preamble (the first <see cref="PreambleLength"/> bytes, or fewer when that is all there is) and
    /// returns the header length.
    /// </summary>
    /// <exception cref="KvContainerException">Truncated, bad magic, unsupported version or flags, or a header above the limit.</exception>
    public static int ReadPreamble(ReadOnlySpan<byte> bytes, KvContainerLimits limits)
    {
        var magicLength = Math.Min(bytes.Length, Magic.Length);
        if (!bytes[..magicLength].SequenceEqual(Magic[..magicLength]))
        {
            throw new KvContainerException(KvContainerError.BadMagic, $"Not a KV container: the first bytes are {Convert.ToHexString(bytes[..magicLength])}, not the magic {Convert.ToHexString(Magic)}.", 0);
        }

        if (bytes.Length < PreambleLength)
        {
            throw new KvContainerException(KvContainerError.Truncated, $"The container ends after {bytes.Length} bytes, inside its {PreambleLength}-byte preamble.", bytes.Length);
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
        if (version != Version)
        {
            throw new KvContainerException(KvContainerError.UnsupportedVersion, $"Container format version {version} is not supported (this reader knows version {Version}).", 8);
        }

        var flags = BinaryPrimitives.ReadUInt16LittleEndian(bytes[10..]);
        if (flags != 0)
        {
            throw new KvContainerException(KvContainerError.UnsupportedVersion, $"Container flags 0x{flags:x4} are not supported by format version {Version} (it knows none).", 10);
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(bytes[12..]);
        if (length > (uint)limits.MaxHeaderBytes)
        {
            throw new KvContainerException(KvContainerError.LimitExceeded, $"The header is {length} bytes; the limit is {limits.MaxHeaderBytes}.", 12);
        }

        if (length < FixedFieldsLength)
        {
            throw new KvContainerException(KvContainerError.Malformed, $"The header is {length} bytes; its fixed fields alone take {FixedFieldsLength}.", 12);
        }

        return (int)length;
    }

    /// <summary>
    /// Verifies the header checksum and parses the header. <paramref name="region"/> holds exactly preamble, header
    /// and checksum (<see cref="HeaderRegionLength"/> of <paramref name="headerLength"/>), as <see cref="ReadPreamble"/> checked.
    /// </summary>
    /// <param name="region">Preamble, header and checksum.</param>
    /// <param name="headerLength">The header length from the preamble.</param>
    /// <param name="limits">Limits for counts and the decoded size.</param>
    /// <param name="fields">When given, receives every field's place, in order.</param>
    /// <param name="checksum">The verified header checksum (the seed of the section checksums).</param>
    /// <exception cref="KvContainerException">Checksum mismatch, a value the format does not allow, a count above the limits, or an unknown codec.</exception>
    public static KvContainerHeader ParseHeader(ReadOnlySpan<byte> region, int headerLength, KvContainerLimits limits, List<KvContainerField>? fields, out ulong checksum)
    {
        var end = PreambleLength + headerLength;
        fields?.AddRange([new("magic", 0, 8), new("format version", 8, 2), new("flags", 10, 2), new("header length", 12, 4)]);
        var stored = BinaryPrimitives.ReadUInt64LittleEndian(region[end..]);
        var computed = XxHash64.HashToUInt64(region[..end]);
        if (stored != computed)
        {
            throw new KvContainerException(KvContainerError.HeaderChecksumMismatch, $"Header checksum mismatch (stored 0x{stored:x16}, computed 0x{computed:x16}).", end);
        }

        checksum = stored;

        var r = new FieldReader(region[..end], PreambleLength, fields);
        var kindOffset = r.Offset;
        var kindByte = r.U8("entry kind");
        if (kindByte > (byte)CacheEntryKind.PrefixBlock)
        {
            throw Malformed($"Entry kind {kindByte} is unknown (0 chunk, 1 prefix block).", kindOffset);
        }

        var dtypeOffset = r.Offset;
        var dtype = r.U8("stored dtype");
        if (dtype != DTypeFp16)
        {
            throw Malformed($"Stored dtype {dtype} is unknown (the canonical form is fp16, {DTypeFp16}).", dtypeOffset);
        }

        var codecOffset = r.Offset;
        var codecKind = r.U8("codec kind");
        var codecLevel = r.U8("codec level");
        var codec = new KvCodecSpec((KvCodecKind)codecKind, codecLevel);
        if (!codec.IsValid)
        {
            throw new KvContainerException(KvContainerError.UnknownCodec, $"Codec {codecKind} level {codecLevel} is not one this version knows.", codecOffset);
        }

        var tokens = r.Count("token count", limits.MaxTokens, "tokens");
        var layers = r.Count("layer count", limits.MaxLayers, "layers");
        var heads = r.Count("kv heads", limits.MaxKvHeads, "KV heads");
        var headDim = r.Count("head dim", limits.MaxHeadDim, "head dim");
        var id = r.String("id");
        if (id.Length == 0 || !IsLowerHex(id))
        {
            throw Malformed($"The id '{id}' is not lowercase hex.", r.LastStringOffset);
        }

        var variant = r.String("variant");
        var model = r.String("model fingerprint");
        if (model.Length == 0)
        {
            throw Malformed("The model fingerprint is empty.", r.LastStringOffset);
        }

        var tokenizer = r.String("tokenizer fingerprint");
        if (tokenizer.Length == 0)
        {
            throw Malformed("The tokenizer fingerprint is empty.", r.LastStringOffset);
        }

        var parametersLength = r.Length("codec parameters length", "codec parameters");
        var parameters = r.Bytes("codec parameters", parametersLength).ToArray();

        int[]? tokenIds = null;
        if (r.Flag("token ids flag"))
        {
            var countOffset = r.Offset;
            var count = r.U32("token id count");
            if (count != (uint)tokens)
            {
                throw Malformed($"The header carries {count} token ids for {tokens} tokens.", countOffset);
            }

            var idBytes = r.Bytes("token ids", tokens * 4L);
            tokenIds = new int[tokens];
            for (var i = 0; i < tokenIds.Length; i++)
            {
                tokenIds[i] = BinaryPrimitives.ReadInt32LittleEndian(idBytes[(i * 4)..]);
            }
        }

        int[] hiddenLayers = [];
        var hiddenSize = 0;
        if (r.Flag("hidden states flag"))
        {
            hiddenSize = r.Count("hidden size", limits.MaxHiddenSize, "hidden size");
            var countOffset = r.Offset;
            var count = r.U32("hidden layer count");
            if (count == 0 || count > (uint)layers)
            {
                throw Malformed($"The header lists {count} E-cache layers; there must be 1..{layers} (the layer count).", countOffset);
            }

            var layerOffset = r.Offset;
            var layerBytes = r.Bytes("hidden layers", count * 4L);
            hiddenLayers = new int[count];
            for (var i = 0; i < hiddenLayers.Length; i++)
            {
                var layer = BinaryPrimitives.ReadUInt32LittleEndian(layerBytes[(i * 4)..]);
                if (layer >= (uint)layers || (i > 0 && layer <= (uint)hiddenLayers[i - 1]))
                {
                    throw Malformed($"E-cache layer {i} is {layer}; the layers must be strictly increasing and below {layers}.", layerOffset + (i * 4));
                }

                hiddenLayers[i] = (int)layer;
            }
        }

        if (r.Offset != end)
        {
            throw Malformed($"The header has {end - r.Offset} bytes after its last field.", r.Offset);
        }

        fields?.Add(new("header checksum", end, ChecksumLength));
        CheckDecodedSize(tokens, layers, heads, headDim, hiddenLayers.Length, hiddenSize, limits);
        return new KvContainerHeader
        {
            FormatVersion = Version,
            Key = new CacheKey((CacheEntryKind)kindByte, id, variant),
            ModelFingerprint = model,
            TokenizerFingerprint = tokenizer,
            TokenCount = tokens,
            LayerCount = layers,
            KvHeads = heads,
            HeadDim = headDim,
            Codec = codec,
            CodecParameters = parameters,
            TokenIds = tokenIds,
            HiddenStateLayers = hiddenLayers,
            HiddenSize = hiddenSize,
        };
    }

    /// <summary>"section 7 (layer 3 V)", for messages.</summary>
    public static string Describe(int index, in KvSectionShape shape) => shape.Kind switch
    {
        KvSectionKind.Keys => string.Create(CultureInfo.InvariantCulture, $"section {index} (layer {shape.Layer} K)"),
        KvSectionKind.Values => string.Create(CultureInfo.InvariantCulture, $"section {index} (layer {shape.Layer} V)"),
        _ => string.Create(CultureInfo.InvariantCulture, $"section {index} (hidden states entering layer {shape.Layer})"),
    };

    /// <summary>Validates what the writer will put in a header, so it never writes a container the format forbids.</summary>
    public static void ValidateForWriting(KvContainerHeader header)
    {
        if (header.Key.Id is not { Length: > 0 } id || !IsLowerHex(id))
        {
            throw new ArgumentException($"The entry's id '{header.Key.Id}' is not lowercase hex.", nameof(header));
        }

        if (!Enum.IsDefined(header.Key.Kind))
        {
            throw new ArgumentException($"The entry kind {header.Key.Kind} is unknown.", nameof(header));
        }

        CheckWritable(header.Key.Variant ?? string.Empty, "variant", allowEmpty: true);
        CheckWritable(header.ModelFingerprint, "model fingerprint", allowEmpty: false);
        CheckWritable(header.TokenizerFingerprint, "tokenizer fingerprint", allowEmpty: false);
        if (header.TokenCount < 1 || header.LayerCount < 1 || header.KvHeads < 1 || header.HeadDim < 1)
        {
            throw new ArgumentException($"A container needs at least one token, layer, KV head and head dim; the entry has {header.TokenCount} tokens, {header.LayerCount} layers, {header.KvHeads} heads, head dim {header.HeadDim}.", nameof(header));
        }
    }

    private static void CheckWritable(string? text, string what, bool allowEmpty)
    {
        if (text is null || (!allowEmpty && text.Length == 0))
        {
            throw new ArgumentException($"The {what} is empty.", nameof(text));
        }

        foreach (var ch in text)
        {
            if (char.IsControl(ch) || char.IsSurrogate(ch))
            {
                throw new ArgumentException($"The {what} holds a control or surrogate character (U+{(int)ch:X4}).", nameof(text));
            }
        }

        if (Encoding.UTF8.GetByteCount(text) > MaxStringBytes)
        {
            throw new ArgumentException($"The {what} is longer than {MaxStringBytes} UTF-8 bytes.", nameof(text));
        }
    }

    private static void CheckDecodedSize(int tokens, int layers, int heads, int headDim, int hiddenLayers, int hiddenSize, KvContainerLimits limits)
    {
        // Each factor is below 2^31, so these products fit in a long before any of them is compared.
        var perLayer = (long)heads * tokens * headDim;
        var kvValues = perLayer * layers;
        var hiddenValues = (long)tokens * hiddenSize;
        if (kvValues > Array.MaxLength || hiddenValues > Array.MaxLength)
        {
            throw new KvContainerException(KvContainerError.LimitExceeded,
                $"The entry holds {kvValues} K values per tensor and {hiddenValues} per E-cache layer; an array holds at most {Array.MaxLength}.", PreambleLength + 4);
        }

        var decodedBytes = checked((2 * kvValues * 2) + (hiddenLayers * hiddenValues * 2));
        if (decodedBytes > limits.MaxTotalBytes)
        {
            throw new KvContainerException(KvContainerError.LimitExceeded,
                $"The entry decodes to {decodedBytes} bytes; the limit is {limits.MaxTotalBytes}.", PreambleLength + 4);
        }
    }

    private static int StringLength(string text) => 2 + Encoding.UTF8.GetByteCount(text);

    private static int WriteString(Span<byte> destination, string text)
    {
        var n = Encoding.UTF8.GetBytes(text, destination[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(destination, (ushort)n);
        return 2 + n;
    }

    private static bool IsLowerHex(string text)
    {
        foreach (var ch in text)
        {
            if (!char.IsAsciiDigit(ch) && ch is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }

    private static KvContainerException Malformed(string message, long offset) => new(KvContainerError.Malformed, message, offset);

    /// <summary>Reads header fields in order, each bounds-checked against the header's end.</summary>
    private ref struct FieldReader(ReadOnlySpan<byte> region, int start, List<KvContainerField>? fields)
    {
        private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        private readonly ReadOnlySpan<byte> _region = region;
        private readonly List<KvContainerField>? _fields = fields;

        public int Offset { get; private set; } = start;

        public int LastStringOffset { get; private set; }

        public byte U8(string name) => Take(name, 1)[0];

        public uint U32(string name) => BinaryPrimitives.ReadUInt32LittleEndian(Take(name, 4));

        public bool Flag(string name)
        {
            var at = Offset;
            var value = U8(name);
            return value switch
            {
                0 => false,
                1 => true,
                _ => throw Malformed($"The {name} is {value}; it must be 0 or 1.", at),
            };
        }

        /// <summary>A count that must be 1..<paramref name="limit"/>.</summary>
        public int Count(string name, int limit, string what)
        {
            var at = Offset;
            var value = U32(name);
            if (value == 0)
            {
                throw Malformed($"The header says 0 {what}; there must be at least 1.", at);
            }

            if (value > (uint)limit)
            {
                throw new KvContainerException(KvContainerError.LimitExceeded, $"The header says {value} {what}; the limit is {limit}.", at);
            }

            return (int)value;
        }

        /// <summary>A u32 byte length that must fit in what is left of the header.</summary>
        public int Length(string name, string what)
        {
            var at = Offset;
            var value = U32(name);
            if (value > (uint)(_region.Length - Offset))
            {
                throw Malformed($"The {what} are {value} bytes; the header has {_region.Length - Offset} left.", at);
            }

            return (int)value;
        }

        public ReadOnlySpan<byte> Bytes(string name, long length) => Take(name, length);

        public string String(string name)
        {
            var at = Offset;
            var length = BinaryPrimitives.ReadUInt16LittleEndian(Take(name + " length", 2));
            if (length > MaxStringBytes)
            {
                throw new KvContainerException(KvContainerError.LimitExceeded, $"The {name} is {length} bytes; the limit is {MaxStringBytes}.", at);
            }

            LastStringOffset = Offset;
            var bytes = Take(name, length);
            string text;
            try
            {
                text = StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Malformed($"The {name} is not valid UTF-8.", LastStringOffset);
            }

            foreach (var ch in text)
            {
                if (char.IsControl(ch))
                {
                    throw Malformed($"The {name} holds a control character (U+{(int)ch:X4}).", LastStringOffset);
                }
            }

            return text;
        }

        private ReadOnlySpan<byte> Take(string name, long length)
        {
            if (length > _region.Length - Offset)
            {
                throw Malformed($"The header field '{name}' ({length} bytes) runs past the header's end ({_region.Length - Offset} bytes left).", Offset);
            }

            _fields?.Add(new(name, Offset, (int)length));
            var span = _region.Slice(Offset, (int)length);
            Offset += (int)length;
            return span;
        }
    }
}
