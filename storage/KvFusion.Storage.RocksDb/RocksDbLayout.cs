using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvFusion.Cache.Tiers;

namespace KvFusion.Storage.RocksDb;

/// <summary>
/// How entries are laid out in the database (docs/storage-rocksdb.md): the column families and every key and value
/// format, in one place so the tier, its tests and the docs agree.
/// </summary>
internal static class RocksDbLayout
{
    /// <summary>Size and last-access sequence of every entry: <c>{fp}\0{tenant}/{entry}</c> → size, sequence (int64 LE each).</summary>
    public const string MetaFamily = "meta";

    /// <summary>The access order: big-endian sequence, then the meta key → size (int64 LE). The first key is the least recently used entry.</summary>
    public const string OrderFamily = "lru";

    /// <summary>Data column families are named <c>m-{model fingerprint}</c>.</summary>
    public const string ModelFamilyPrefix = "m-";

    public const int MetaValueBytes = 16;

    public const int SizeValueBytes = 8;

    public const int SequenceBytes = 8;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    public static string FamilyOf(string modelFingerprint) => ModelFamilyPrefix + modelFingerprint;

    /// <summary>The fingerprint of a data column family, or null for any other name.</summary>
    public static string? FingerprintOf(string familyName) =>
        familyName.StartsWith(ModelFamilyPrefix, StringComparison.Ordinal) && KvNamespace.IsValidFingerprint(familyName[ModelFamilyPrefix.Length..])
            ? familyName[ModelFamilyPrefix.Length..]
            : null;

    /// <summary>The key of an entry inside its model's column family: UTF-8 of <c>{tenant}/{entry name}</c>.</summary>
    public static byte[] DataKey(string tenant, string entryName) => Encoding.UTF8.GetBytes($"{tenant}/{entryName}");

    /// <summary>The key of an entry in <see cref="MetaFamily"/>: UTF-8 of <c>{fp}\0{tenant}/{entry name}</c>.</summary>
    public static byte[] MetaKey(string modelFingerprint, string tenant, string entryName) => Encoding.UTF8.GetBytes($"{modelFingerprint}\0{tenant}/{entryName}");

    /// <summary>The prefix of every meta key of one namespace.</summary>
    public static byte[] MetaPrefix(KvNamespace ns) => Encoding.UTF8.GetBytes($"{ns.ModelFingerprint}\0{ns.Tenant}/");

    public static byte[] MetaValue(long size, long sequence)
    {
        var value = new byte[MetaValueBytes];
        BinaryPrimitives.WriteInt64LittleEndian(value, size);
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(SizeValueBytes), sequence);
        return value;
    }

    public static bool TryReadMetaValue(ReadOnlySpan<byte> value, out long size, out long sequence)
    {
        if (value.Length != MetaValueBytes)
        {
            size = sequence = 0;
            return false;
        }

        size = BinaryPrimitives.ReadInt64LittleEndian(value);
        sequence = BinaryPrimitives.ReadInt64LittleEndian(value[SizeValueBytes..]);
        return true;
    }

    public static byte[] SizeValue(long size)
    {
        var value = new byte[SizeValueBytes];
        BinaryPrimitives.WriteInt64LittleEndian(value, size);
        return value;
    }

    public static long ReadSizeValue(ReadOnlySpan<byte> value) => value.Length == SizeValueBytes ? BinaryPrimitives.ReadInt64LittleEndian(value) : 0;

    /// <summary>Big-endian, so RocksDB's bytewise order is the access order.</summary>
    public static byte[] OrderKey(long sequence, ReadOnlySpan<byte> metaKey)
    {
        var key = new byte[SequenceBytes + metaKey.Length];
        BinaryPrimitives.WriteInt64BigEndian(key, sequence);
        metaKey.CopyTo(key.AsSpan(SequenceBytes));
        return key;
    }

    public static long SequenceOf(ReadOnlySpan<byte> orderKey) => orderKey.Length >= SequenceBytes ? BinaryPrimitives.ReadInt64BigEndian(orderKey) : 0;

    /// <summary>Splits a meta key into its model, tenant and entry name; false for bytes no tier wrote.</summary>
    public static bool TryParseMetaKey(ReadOnlySpan<byte> metaKey, [NotNullWhen(true)] out string? modelFingerprint, [NotNullWhen(true)] out string? tenant, [NotNullWhen(true)] out string? entryName)
    {
        modelFingerprint = tenant = entryName = null;
        string text;
        try
        {
            text = StrictUtf8.GetString(metaKey);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        var zero = text.IndexOf('\0', StringComparison.Ordinal);
        var slash = zero < 0 ? -1 : text.IndexOf('/', zero + 1);
        if (slash < 0)
        {
            return false;
        }

        modelFingerprint = text[..zero];
        tenant = text[(zero + 1)..slash];
        entryName = text[(slash + 1)..];
        return true;
    }
}
