using System.Diagnostics.CodeAnalysis;
using Blake3;
using KvFusion.Engine.Models;

namespace KvFusion.Cache.Keys;

/// <summary>
/// The key of one block of an exact prefix (DESIGN.md, "Keys"): BLAKE3 over the key format version (u32
/// little-endian), the model fingerprint (32 raw bytes), the tokenizer fingerprint (32 raw bytes), the parent block's
/// id (32 raw bytes, all zero for block 0) and the block's <see cref="BlockTokens"/> token ids (int32 little-endian).
/// Chaining makes a block's id stand for the whole prefix up to its end, so a lookup walks the chain and stops at the
/// first miss.
/// </summary>
public readonly struct PrefixBlockId : IEquatable<PrefixBlockId>
{
    /// <summary>Tokens per block. Only full blocks get ids: a partial block would change id as the prefix grows.</summary>
    public const int BlockTokens = 256;

    /// <summary>Version of the key layout (shared with <see cref="ChunkId.FormatVersion"/>).</summary>
    public const uint FormatVersion = ChunkId.FormatVersion;

    private readonly Digest256 _digest;

    private PrefixBlockId(Digest256 digest) => _digest = digest;

    /// <summary>
    /// Computes the id of one block from its parent's id (null for block 0) and its exactly
    /// <see cref="BlockTokens"/> tokens; extends a chain without rehashing it.
    /// </summary>
    /// <exception cref="ArgumentException">A fingerprint is not 64 hex characters, or the block is not <see cref="BlockTokens"/> tokens.</exception>
    public static PrefixBlockId Compute(string modelFingerprintHex, string tokenizerFingerprintHex, PrefixBlockId? parent, ReadOnlySpan<int> blockTokens)
    {
        if (blockTokens.Length != BlockTokens)
        {
            throw new ArgumentException($"A prefix block is {BlockTokens} tokens; got {blockTokens.Length}.", nameof(blockTokens));
        }

        Span<byte> header = stackalloc byte[KeyHashing.HeaderLength];
        KeyHashing.WriteHeader(header, modelFingerprintHex, tokenizerFingerprintHex);
        return Next(header, parent, blockTokens);
    }

    /// <summary>
    /// Ids of every full <see cref="BlockTokens"/>-token block of a prefix, in order; a trailing partial block gets
    /// none (600 tokens give 2 ids).
    /// </summary>
    /// <exception cref="ArgumentException">A fingerprint is not 64 hex characters.</exception>
    public static IReadOnlyList<PrefixBlockId> ComputeChain(string modelFingerprintHex, string tokenizerFingerprintHex, ReadOnlySpan<int> tokens)
    {
        Span<byte> header = stackalloc byte[KeyHashing.HeaderLength];
        KeyHashing.WriteHeader(header, modelFingerprintHex, tokenizerFingerprintHex);
        var ids = new PrefixBlockId[tokens.Length / BlockTokens];
        PrefixBlockId? parent = null;
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = Next(header, parent, tokens.Slice(i * BlockTokens, BlockTokens));
            parent = ids[i];
        }

        return ids;
    }

    /// <summary>Ids of every full block of a prefix under the model and tokenizer of <paramref name="fingerprint"/>.</summary>
    /// <exception cref="ArgumentException">A fingerprint is not 64 hex characters.</exception>
    public static IReadOnlyList<PrefixBlockId> ComputeChain(ModelFingerprint fingerprint, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        return ComputeChain(fingerprint.Model, fingerprint.Tokenizer, tokens);
    }

    /// <summary>Reads an id from its 32 raw bytes (as written by <see cref="WriteBytes"/>).</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is not 32 bytes long.</exception>
    public static PrefixBlockId FromBytes(ReadOnlySpan<byte> bytes) => new(Digest256.FromBytes(bytes, nameof(bytes)));

    /// <summary>Parses the 64-character hex form (either case; <see cref="ToString"/> writes lowercase).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">Wrong length or a character that is not hex.</exception>
    public static PrefixBlockId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Digest256.TryParse(text, out var digest, out var error)
            ? new PrefixBlockId(digest)
            : throw new FormatException($"Not a prefix block id: {error}");
    }

    /// <summary>Parses the 64-character hex form; false for null, a wrong length or a non-hex character.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out PrefixBlockId id)
    {
        if (text is not null && Digest256.TryParse(text, out var digest, out _))
        {
            id = new PrefixBlockId(digest);
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
    public bool Equals(PrefixBlockId other) => _digest.Equals(other._digest);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is PrefixBlockId other && Equals(other);

    /// <summary>Folds the digest's first eight bytes: already uniformly distributed, and the same in every process.</summary>
    public override int GetHashCode() => _digest.GetHashCode();

    /// <summary>Equality of the digests.</summary>
    public static bool operator ==(PrefixBlockId left, PrefixBlockId right) => left.Equals(right);

    /// <summary>Inequality of the digests.</summary>
    public static bool operator !=(PrefixBlockId left, PrefixBlockId right) => !left.Equals(right);

    private static PrefixBlockId Next(ReadOnlySpan<byte> header, PrefixBlockId? parent, ReadOnlySpan<int> blockTokens)
    {
        Span<byte> parentBytes = stackalloc byte[Digest256.ByteLength];
        if (parent is { } p)
        {
            p.WriteBytes(parentBytes);
        }
        else
        {
            parentBytes.Clear(); // Block 0 has no parent: 32 zero bytes stand in.
        }

        // Not `using var`: the hasher is passed by ref (it may be a struct), which a using variable forbids.
        var hasher = Hasher.New();
        try
        {
            hasher.Update(header);
            hasher.Update(parentBytes);
            KeyHashing.UpdateTokens(ref hasher, blockTokens);
            return new PrefixBlockId(KeyHashing.Finish(ref hasher));
        }
        finally
        {
            hasher.Dispose();
        }
    }
}
