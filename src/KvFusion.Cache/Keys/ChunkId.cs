using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Blake3;
using KvFusion.Engine.Models;

namespace KvFusion.Cache.Keys;

/// <summary>
/// The content key of a chunk's KV cache (DESIGN.md, "Keys"): BLAKE3 over the key format version (u32
/// little-endian), the model fingerprint (32 raw bytes), the tokenizer fingerprint (32 raw bytes) and the token ids
/// (int32 little-endian). The same tokens under the same model and tokenizer give the same id in every process,
/// machine and language; docs/test-vectors/chunk-ids.json pins the layout.
/// </summary>
public readonly struct ChunkId : IEquatable<ChunkId>
{
    /// <summary>
    /// Version of the key layout, hashed first. Changing what goes into a key must change this, so keys of the
    /// old layout can never be mistaken for keys of the new one.
    /// </summary>
    public const uint FormatVersion = 1;

    /// <summary>Length of the digest in bytes.</summary>
    public const int ByteLength = Digest256.ByteLength;

    /// <summary>Length of the hex form.</summary>
    public const int HexLength = Digest256.HexLength;

    private readonly Digest256 _digest;

    private ChunkId(Digest256 digest) => _digest = digest;

    /// <summary>Computes the id of a chunk's tokens under a model and tokenizer.</summary>
    /// <param name="modelFingerprintHex">The model fingerprint: 64 hex characters (<see cref="ModelFingerprint.Model"/>).</param>
    /// <param name="tokenizerFingerprintHex">The tokenizer fingerprint: 64 hex characters (<see cref="ModelFingerprint.Tokenizer"/>).</param>
    /// <param name="tokens">The chunk's token ids.</param>
    /// <exception cref="ArgumentException">A fingerprint is not 64 hex characters.</exception>
    public static ChunkId Compute(string modelFingerprintHex, string tokenizerFingerprintHex, ReadOnlySpan<int> tokens)
    {
        Span<byte> header = stackalloc byte[KeyHashing.HeaderLength];
        KeyHashing.WriteHeader(header, modelFingerprintHex, tokenizerFingerprintHex);
        // Not `using var`: the hasher is passed by ref (it may be a struct), which a using variable forbids.
        var hasher = Hasher.New();
        try
        {
            hasher.Update(header);
            KeyHashing.UpdateTokens(ref hasher, tokens);
            return new ChunkId(KeyHashing.Finish(ref hasher));
        }
        finally
        {
            hasher.Dispose();
        }
    }

    /// <summary>Computes the id of a chunk's tokens under the model and tokenizer of <paramref name="fingerprint"/>.</summary>
    /// <exception cref="ArgumentException">A fingerprint is not 64 hex characters.</exception>
    public static ChunkId Compute(ModelFingerprint fingerprint, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        return Compute(fingerprint.Model, fingerprint.Tokenizer, tokens);
    }

    /// <summary>Reads an id from its 32 raw bytes (as written by <see cref="WriteBytes"/>).</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public static ChunkId FromBytes(ReadOnlySpan<byte> bytes) => new(Digest256.FromBytes(bytes, nameof(bytes)));

    /// <summary>Parses the 64-character hex form (either case; <see cref="ToString"/> writes lowercase).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">Wrong length or a character that is not hex.</exception>
    public static ChunkId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Digest256.TryParse(text, out var digest, out var error)
            ? new ChunkId(digest)
            : throw new FormatException($"Not a chunk id: {error}");
    }

    /// <summary>Parses the 64-character hex form; false for null, a wrong length or a non-hex character.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out ChunkId id)
    {
        if (text is not null && Digest256.TryParse(text, out var digest, out _))
        {
            id = new ChunkId(digest);
            return true;
        }

        id = default;
        return false;
    }

    /// <summary>Writes the 32 raw digest bytes.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 32 bytes.</exception>
    public void WriteBytes(Span<byte> destination) => _digest.WriteBytes(destination, nameof(destination));

    /// <summary>The 64 lowercase hex characters of the digest.</summary>
    public override string ToString() => _digest.ToString();

    /// <inheritdoc />
    public bool Equals(ChunkId other) => _digest.Equals(other._digest);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ChunkId other && Equals(other);

    /// <summary>Folds the digest's first eight bytes: already uniformly distributed, and the same in every process.</summary>
    public override int GetHashCode() => _digest.GetHashCode();

    /// <summary>Equality of the digests.</summary>
    public static bool operator ==(ChunkId left, ChunkId right) => left.Equals(right);

    /// <summary>Inequality of the digests.</summary>
    public static bool operator !=(ChunkId left, ChunkId right) => !left.Equals(right);
}

/// <summary>
/// A 32-byte digest held in four words, so key structs are 32 bytes of inline data with no heap array behind them.
/// The words hold the bytes in order (little-endian reads of bytes 0-7, 8-15, ...), so byte order never depends on
/// the machine.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly struct Digest256 : IEquatable<Digest256>
{
    public const int ByteLength = 32;
    public const int HexLength = 64;

    private readonly ulong _w0;
    private readonly ulong _w1;
    private readonly ulong _w2;
    private readonly ulong _w3;

    private Digest256(ulong w0, ulong w1, ulong w2, ulong w3)
    {
        _w0 = w0;
        _w1 = w1;
        _w2 = w2;
        _w3 = w3;
    }

    public static Digest256 FromBytes(ReadOnlySpan<byte> bytes, string paramName)
    {
        if (bytes.Length != ByteLength)
        {
            throw new ArgumentException($"A digest is {ByteLength} bytes; got {bytes.Length}.", paramName);
        }

        return new Digest256(
            BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]));
    }

    public static bool TryParse(string text, out Digest256 digest, [NotNullWhen(false)] out string? error)
    {
        digest = default;
        if (text.Length != HexLength)
        {
            error = $"expected {HexLength} hex characters, got {text.Length}.";
            return false;
        }

        for (var i = 0; i < text.Length; i++)
        {
            if (!char.IsAsciiHexDigit(text[i]))
            {
                error = $"character {i} ('{text[i]}') is not a hex digit.";
                return false;
            }
        }

        Span<byte> bytes = stackalloc byte[ByteLength];
        Convert.FromHexString(text, bytes, out _, out _);
        digest = FromBytes(bytes, nameof(text));
        error = null;
        return true;
    }

    public void WriteBytes(Span<byte> destination, string paramName)
    {
        if (destination.Length < ByteLength)
        {
            throw new ArgumentException($"A digest needs {ByteLength} bytes; the destination has {destination.Length}.", paramName);
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, _w0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _w1);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], _w2);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], _w3);
    }

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[ByteLength];
        WriteBytes(bytes, nameof(bytes));
        return Convert.ToHexStringLower(bytes);
    }

    public bool Equals(Digest256 other) => _w0 == other._w0 && _w1 == other._w1 && _w2 == other._w2 && _w3 == other._w3;

    public override bool Equals(object? obj) => obj is Digest256 other && Equals(other);

    public override int GetHashCode() => (int)(_w0 ^ (_w0 >> 32));
}

/// <summary>The byte layout shared by chunk and prefix-block ids.</summary>
internal static class KeyHashing
{
    /// <summary>Format version (4) + model fingerprint (32) + tokenizer fingerprint (32).</summary>
    public const int HeaderLength = 4 + (2 * Digest256.ByteLength);

    public static void WriteHeader(Span<byte> header, string modelFingerprintHex, string tokenizerFingerprintHex)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, ChunkId.FormatVersion);
        DecodeFingerprint(modelFingerprintHex, header.Slice(4, Digest256.ByteLength), nameof(modelFingerprintHex));
        DecodeFingerprint(tokenizerFingerprintHex, header.Slice(4 + Digest256.ByteLength, Digest256.ByteLength), nameof(tokenizerFingerprintHex));
    }

    public static void UpdateTokens(ref Hasher hasher, ReadOnlySpan<int> tokens)
    {
        if (BitConverter.IsLittleEndian)
        {
            // The in-memory form already is the key's int32 little-endian layout.
            hasher.Update(MemoryMarshal.AsBytes(tokens));
            return;
        }

        Span<byte> buffer = stackalloc byte[1024];
        while (!tokens.IsEmpty)
        {
            var n = Math.Min(tokens.Length, buffer.Length / sizeof(int));
            for (var i = 0; i < n; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(buffer[(i * sizeof(int))..], tokens[i]);
            }

            hasher.Update(buffer[..(n * sizeof(int))]);
            tokens = tokens[n..];
        }
    }

    public static Digest256 Finish(ref Hasher hasher)
    {
        Span<byte> digest = stackalloc byte[Digest256.ByteLength];
        hasher.Finalize(digest);
        return Digest256.FromBytes(digest, nameof(digest));
    }

    private static void DecodeFingerprint(string hex, Span<byte> destination, string paramName)
    {
        ArgumentNullException.ThrowIfNull(hex, paramName);
        if (!Digest256.TryParse(hex, out var digest, out var error))
        {
            throw new ArgumentException($"A fingerprint is {Digest256.HexLength} hex characters (BLAKE3): {error}", paramName);
        }

        digest.WriteBytes(destination, paramName);
    }
}
