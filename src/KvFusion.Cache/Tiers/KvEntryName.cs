using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// The canonical text of a <see cref="CacheKey"/> inside a namespace, which every tier uses as (part of) its storage
/// key and parses back when it lists entries: <c>c/{id}/{variant}</c> or <c>p/{id}</c>. The variant is kept readable
/// with its bytes outside <c>[A-Za-z0-9:._-]</c> written as <c>%XX</c>, so the name never holds a '/', a space, a
/// control character or a Redis hash tag brace, and distinct keys have distinct names.
/// </summary>
public static class KvEntryName
{
    /// <summary>The longest variant a stored key may carry (UTF-8 bytes).</summary>
    public const int MaxVariantBytes = 256;

    /// <summary>The name of <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">The id is not 1 to 128 lowercase hex digits, the kind is unknown, or the variant is longer than <see cref="MaxVariantBytes"/>.</exception>
    public static string Format(CacheKey key)
    {
        if (!KvNamespace.IsValidFingerprint(key.Id))
        {
            throw new ArgumentException($"A stored key's id must be 1 to 128 lowercase hex digits; got '{key.Id}'.", nameof(key));
        }

        switch (key.Kind)
        {
            case CacheEntryKind.PrefixBlock:
                return "p/" + key.Id;
            case CacheEntryKind.Chunk:
                var variant = Encoding.UTF8.GetBytes(key.Variant ?? string.Empty);
                if (variant.Length > MaxVariantBytes)
                {
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"A stored key's variant is at most {MaxVariantBytes} UTF-8 bytes; got {variant.Length}."), nameof(key));
                }

                var sb = new StringBuilder(key.Id.Length + 3 + variant.Length);
                sb.Append("c/").Append(key.Id).Append('/');
                foreach (var b in variant)
                {
                    if (IsPlain(b))
                    {
                        sb.Append((char)b);
                    }
                    else
                    {
                        sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
                    }
                }

                return sb.ToString();
            default:
                throw new ArgumentException($"Unknown entry kind {key.Kind}.", nameof(key));
        }
    }

    /// <summary>Parses a name written by <see cref="Format"/>; false for anything else (it never throws).</summary>
    public static bool TryParse(string? name, [NotNullWhen(true)] out CacheKey? key)
    {
        key = null;
        if (name is null || name.Length < 3 || name[1] != '/')
        {
            return false;
        }

        if (name[0] == 'p')
        {
            var id = name[2..];
            if (!KvNamespace.IsValidFingerprint(id))
            {
                return false;
            }

            key = new CacheKey(CacheEntryKind.PrefixBlock, id, string.Empty);
            return true;
        }

        if (name[0] != 'c')
        {
            return false;
        }

        var slash = name.IndexOf('/', 2);
        if (slash < 0)
        {
            return false;
        }

        var chunkId = name[2..slash];
        if (!KvNamespace.IsValidFingerprint(chunkId) || !TryUnescape(name.AsSpan(slash + 1), out var variant))
        {
            return false;
        }

        key = new CacheKey(CacheEntryKind.Chunk, chunkId, variant);
        return Format(key.Value) == name;
    }

    private static bool IsPlain(byte b) => b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)':' or (byte)'.' or (byte)'_' or (byte)'-';

    private static bool TryUnescape(ReadOnlySpan<char> text, [NotNullWhen(true)] out string? value)
    {
        value = null;
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '%')
            {
                if (i + 2 >= text.Length)
                {
                    return false;
                }

                if (!byte.TryParse(text.Slice(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
                {
                    return false;
                }

                bytes.Add(b);
                i += 2;
            }
            else if (c < 128 && IsPlain((byte)c))
            {
                bytes.Add((byte)c);
            }
            else
            {
                return false;
            }
        }

        try
        {
            value = new UTF8Encoding(false, true).GetString([.. bytes]);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
