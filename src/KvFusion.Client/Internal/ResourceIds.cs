namespace KvFusion.Client.Internal;

/// <summary>Chunk and document ids: 64 hex digits, sent in lowercase.</summary>
internal static class ResourceIds
{
    /// <summary>The length of an id in hex digits (a 256-bit hash).</summary>
    public const int Length = 64;

    /// <summary>Checks an id and returns it in lowercase.</summary>
    public static string Normalize(string id, string paramName)
    {
        ArgumentNullException.ThrowIfNull(id, paramName);
        if (id.Length != Length)
        {
            throw new ArgumentException($"An id is {Length} hex digits; '{Shorten(id)}' has {id.Length} characters.", paramName);
        }

        var upper = false;
        foreach (var c in id)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                throw new ArgumentException($"An id is {Length} hex digits; '{Shorten(id)}' holds '{c}'.", paramName);
            }

            upper |= char.IsAsciiLetterUpper(c);
        }

        return upper ? id.ToLowerInvariant() : id;
    }

    private static string Shorten(string id) => id.Length <= 80 ? id : string.Concat(id.AsSpan(0, 77), "...");
}
