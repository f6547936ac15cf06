using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using KvFusion.Cache.Storage;

namespace KvFusion.Storage.Redis;

/// <summary>
/// The manifest of one stored value: which generation of piece keys holds it, how it is cut, and the hash of the
/// whole value. 56 bytes, little-endian: magic <c>KVFR</c>, version (u16), reserved (u16, zero), generation (16
/// bytes), total length (i64), piece count (i32), piece size (i32), XxHash3-64 of the value (u64), XxHash3-64 of the
/// 48 bytes before it (u64).
/// </summary>
internal readonly record struct RedisManifest(UInt128 Generation, long TotalLength, int PieceCount, int PieceBytes, ulong Hash)
{
    public const int Size = 56;
    public const ushort CurrentVersion = 1;
    private const uint Magic = 0x5246564B; // "KVFR" read as little-endian u32.
    private const int CheckedBytes = 48;

    /// <summary>The manifest of <paramref name="value"/> cut into pieces of <paramref name="pieceBytes"/>.</summary>
    public static RedisManifest For(UInt128 generation, ReadOnlySpan<byte> value, int pieceBytes) =>
        new(generation, value.Length, PieceCountOf(value.Length, pieceBytes), pieceBytes, XxHash3.HashToUInt64(value));

    public static int PieceCountOf(long totalLength, int pieceBytes) => checked((int)((totalLength + pieceBytes - 1) / pieceBytes));

    /// <summary>The length of piece <paramref name="index"/>.</summary>
    public int PieceLength(int index) => index < PieceCount - 1 ? PieceBytes : checked((int)(TotalLength - ((long)PieceBytes * (PieceCount - 1))));

    public byte[] ToBytes()
    {
        var bytes = new byte[Size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], CurrentVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], 0);
        BinaryPrimitives.WriteUInt128LittleEndian(span[8..], Generation);
        BinaryPrimitives.WriteInt64LittleEndian(span[24..], TotalLength);
        BinaryPrimitives.WriteInt32LittleEndian(span[32..], PieceCount);
        BinaryPrimitives.WriteInt32LittleEndian(span[36..], PieceBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(span[40..], Hash);
        BinaryPrimitives.WriteUInt64LittleEndian(span[CheckedBytes..], XxHash3.HashToUInt64(span[..CheckedBytes]));
        return bytes;
    }

    /// <summary>Parses and checks a manifest read back; false (with the reason) for anything malformed.</summary>
    public static bool TryParse(ReadOnlySpan<byte> bytes, long maxValueBytes, out RedisManifest manifest, out string reason)
    {
        manifest = default;
        if (bytes.Length != Size)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the manifest is {bytes.Length} bytes, not {Size}");
            return false;
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic)
        {
            reason = "the manifest does not start with the KVFR magic";
            return false;
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != CurrentVersion)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the manifest has version {version}; this reader knows {CurrentVersion}");
            return false;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes[CheckedBytes..]) != XxHash3.HashToUInt64(bytes[..CheckedBytes]))
        {
            reason = "the manifest's own checksum does not match";
            return false;
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..]) != 0)
        {
            reason = "the manifest's reserved field is not zero";
            return false;
        }

        var total = BinaryPrimitives.ReadInt64LittleEndian(bytes[24..]);
        var count = BinaryPrimitives.ReadInt32LittleEndian(bytes[32..]);
        var pieceBytes = BinaryPrimitives.ReadInt32LittleEndian(bytes[36..]);
        if (pieceBytes is < RedisTierOptions.MinPieceBytes or > RedisTierOptions.MaxPieceBytes)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the manifest's piece size {pieceBytes} is outside {RedisTierOptions.MinPieceBytes} to {RedisTierOptions.MaxPieceBytes}");
            return false;
        }

        if (total < 0 || total > Array.MaxLength)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the manifest's total length {total} is not a possible length");
            return false;
        }

        if (total > maxValueBytes)
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the value is {total} bytes, over MaxValueBytes ({maxValueBytes})");
            return false;
        }

        if (count != PieceCountOf(total, pieceBytes))
        {
            reason = string.Create(CultureInfo.InvariantCulture, $"the manifest says {count} pieces for {total} bytes in pieces of {pieceBytes}");
            return false;
        }

        manifest = new RedisManifest(BinaryPrimitives.ReadUInt128LittleEndian(bytes[8..]), total, count, pieceBytes, BinaryPrimitives.ReadUInt64LittleEndian(bytes[40..]));
        reason = string.Empty;
        return true;
    }

    /// <summary>Parses a manifest, throwing <see cref="KvBlobException"/> when it is malformed.</summary>
    public static RedisManifest Parse(ReadOnlySpan<byte> bytes, long maxValueBytes, string entry) =>
        TryParse(bytes, maxValueBytes, out var manifest, out var reason)
            ? manifest
            : throw new KvBlobException($"The Redis entry {entry} cannot be used: {reason}.");
}
