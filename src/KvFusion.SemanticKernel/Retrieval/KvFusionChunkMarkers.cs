using System.Text;
using KvFusion.Cache.Keys;

namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>
/// In-text markers that carry a chunk's identity through paths that only keep strings (SK's <c>TextSearchProvider</c>,
/// prompt templates): <c>&lt;kvfusion:chunk id="HEX"&gt;text&lt;/kvfusion:chunk&gt;</c>, or <c>&lt;kvfusion:chunk&gt;text&lt;/kvfusion:chunk&gt;</c>
/// for a chunk whose cache is not stored yet.
/// </summary>
/// <remarks>
/// The format has no escapes, so the chunk text between the tags is the chunk's exact text and its id stays valid: the
/// text runs from the opening tag to the first closing tag after it, which is why <see cref="Wrap"/> refuses a text that
/// holds the closing tag itself. <see cref="Split"/> never throws: anything that is not a complete marker (no closing tag,
/// an id that is not 64 hex characters, another attribute) stays plain text, which is also what a model of any other
/// provider sees.
/// </remarks>
public static class KvFusionChunkMarkers
{
    /// <summary>The opening tag's start, before the optional id attribute.</summary>
    public const string OpenTagStart = "<kvfusion:chunk";

    /// <summary>The closing tag.</summary>
    public const string CloseTag = "</kvfusion:chunk>";

    private const string IdAttribute = " id=\"";

    /// <summary>Wraps <paramref name="text"/> in a marker naming <paramref name="chunkId"/> (no id attribute when null).</summary>
    /// <exception cref="ArgumentException">The id is not 64 hex characters, or the text holds the closing tag.</exception>
    public static string Wrap(string text, string? chunkId)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (chunkId is not null && !ChunkId.TryParse(chunkId, out _))
        {
            throw new ArgumentException($"The chunk id '{chunkId}' is not {ChunkId.HexLength} hex characters.", nameof(chunkId));
        }

        if (text.Contains(CloseTag, StringComparison.Ordinal))
        {
            throw new ArgumentException($"The chunk text holds '{CloseTag}', which would end its marker early (the markers have no escapes).", nameof(text));
        }

        var marked = new StringBuilder(text.Length + 100).Append(OpenTagStart);
        if (chunkId is not null)
        {
            marked.Append(IdAttribute).Append(chunkId.ToLowerInvariant()).Append('"');
        }

        return marked.Append('>').Append(text).Append(CloseTag).ToString();
    }

    /// <summary>Splits <paramref name="text"/> into the plain text between markers and the marked chunks, in order.</summary>
    /// <remarks>Empty plain segments are left out; an empty input gives no segment. Never throws on malformed markers.</remarks>
    public static IReadOnlyList<KvFusionTextSegment> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var segments = new List<KvFusionTextSegment>();
        var plainStart = 0;
        var search = 0;
        while (search < text.Length)
        {
            var open = text.IndexOf(OpenTagStart, search, StringComparison.Ordinal);
            if (open < 0)
            {
                break;
            }

            if (!TryReadMarker(text, open, out var id, out var bodyStart, out var bodyEnd, out var end))
            {
                search = open + 1;
                continue;
            }

            if (open > plainStart)
            {
                segments.Add(KvFusionTextSegment.Plain(text[plainStart..open]));
            }

            segments.Add(KvFusionTextSegment.Chunk(text[bodyStart..bodyEnd], id));
            plainStart = search = end;
        }

        if (plainStart < text.Length)
        {
            segments.Add(KvFusionTextSegment.Plain(text[plainStart..]));
        }

        return segments;
    }

    /// <summary>True when <paramref name="text"/> holds at least one complete marker.</summary>
    public static bool ContainsMarker(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var segment in Split(text))
        {
            if (segment.IsChunk)
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryReadMarker(string text, int open, out string? id, out int bodyStart, out int bodyEnd, out int end)
    {
        id = null;
        bodyStart = bodyEnd = end = 0;
        var at = open + OpenTagStart.Length;
        if (at < text.Length && text[at] == '>')
        {
            bodyStart = at + 1;
        }
        else if (string.CompareOrdinal(text, at, IdAttribute, 0, IdAttribute.Length) == 0)
        {
            var idStart = at + IdAttribute.Length;
            var idEnd = idStart + ChunkId.HexLength;
            if (idEnd + 1 >= text.Length || text[idEnd] != '"' || text[idEnd + 1] != '>')
            {
                return false;
            }

            var candidate = text[idStart..idEnd];
            if (!ChunkId.TryParse(candidate, out _))
            {
                return false;
            }

            id = candidate.ToLowerInvariant();
            bodyStart = idEnd + 2;
        }
        else
        {
            return false;
        }

        bodyEnd = text.IndexOf(CloseTag, bodyStart, StringComparison.Ordinal);
        if (bodyEnd < 0)
        {
            id = null;
            return false;
        }

        end = bodyEnd + CloseTag.Length;
        return true;
    }
}

/// <summary>One piece of a text split by <see cref="KvFusionChunkMarkers.Split"/>.</summary>
/// <param name="Text">The plain text, or the chunk's exact text.</param>
/// <param name="IsChunk">True for a marked chunk.</param>
/// <param name="ChunkId">The marked chunk's id (lowercase hex); null for plain text and for a chunk marked without id.</param>
public readonly record struct KvFusionTextSegment(string Text, bool IsChunk, string? ChunkId)
{
    /// <summary>A plain text segment.</summary>
    public static KvFusionTextSegment Plain(string text) => new(text, false, null);

    /// <summary>A marked chunk segment.</summary>
    public static KvFusionTextSegment Chunk(string text, string? chunkId) => new(text, true, chunkId);
}
