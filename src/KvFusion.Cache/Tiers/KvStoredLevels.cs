using System.Diagnostics.CodeAnalysis;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// The keys of a chunk's extra stored levels: a tier can keep a chunk at several codecs (say lossless for nearby
/// readers, and two cachegen levels for slow links), each an entry of its own whose variant names the level, so the
/// loading controller can read whichever level suits the bandwidth through the same store.
/// </summary>
public static class KvStoredLevels
{
    /// <summary>What separates the precompute variant from the level in a level key's variant.</summary>
    public const string Marker = "|level=";

    /// <summary>The key of <paramref name="key"/>'s chunk stored with <paramref name="codec"/>.</summary>
    /// <exception cref="ArgumentException">The key is not a chunk's, or is already a level key.</exception>
    public static CacheKey At(CacheKey key, KvCodecSpec codec)
    {
        if (key.Kind != CacheEntryKind.Chunk || IsLevel(key))
        {
            throw new ArgumentException($"Only a chunk's own key has stored levels; got {key}.", nameof(key));
        }

        return key with { Variant = (key.Variant ?? string.Empty) + Marker + codec };
    }

    /// <summary>Whether <paramref name="key"/> names a stored level.</summary>
    public static bool IsLevel(CacheKey key) =>
        key.Kind == CacheEntryKind.Chunk && key.Variant is { } v && v.Contains(Marker, StringComparison.Ordinal);

    /// <summary>Splits a level key into the chunk's own key and the level's codec.</summary>
    public static bool TryParse(CacheKey key, out CacheKey chunk, [NotNullWhen(true)] out KvCodecSpec? codec)
    {
        chunk = default;
        codec = null;
        if (!IsLevel(key))
        {
            return false;
        }

        var at = key.Variant.LastIndexOf(Marker, StringComparison.Ordinal);
        if (!KvCodecSpec.TryParse(key.Variant[(at + Marker.Length)..], out var spec, out _))
        {
            return false;
        }

        chunk = key with { Variant = key.Variant[..at] };
        codec = spec;
        return true;
    }
}
