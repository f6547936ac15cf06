using System.Text;
using KvFusion.Cache.Keys;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.SemanticKernel.Data;

namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>
/// A <c>TextSearchProviderOptions.ContextFormatter</c> for Semantic Kernel's <c>TextSearchProvider</c>: it writes each
/// result as a chunk marker (<see cref="KvFusionChunkMarkers"/>), which the KvFusion chat clients parse back into chunks
/// to fuse, with the result's name after it as the source. Other providers read the markers as text.
/// </summary>
/// <remarks>
/// A result's chunk id is its <see cref="TextSearchResult.Link"/>, else its <see cref="TextSearchResult.Name"/>, whichever
/// is a chunk id (64 hex characters); <see cref="ToTextSearchResult"/> maps a <see cref="ChunkRecord"/> that way. A result
/// without one is marked without id, and the chat client computes (and stores) the chunk from its text. A result whose
/// text holds the markers' closing tag cannot be marked and is written as plain text. The provider puts the formatted
/// context in its instructions; give them to the chat client as a system message (as Semantic Kernel's agents do).
/// </remarks>
public static class KvFusionContextFormatter
{
    /// <summary>The line before the chunks: the same words as the <c>TextSearchProvider</c>'s own context prompt.</summary>
    public const string DefaultContextPrompt = "## Additional Context\nConsider the following information from source documents when responding to the user:";

    /// <summary>Formats <paramref name="results"/> after <see cref="DefaultContextPrompt"/>.</summary>
    public static string Format(List<TextSearchResult> results) => Format(results, DefaultContextPrompt);

    /// <summary>A formatter that writes <paramref name="contextPrompt"/> (none when null or empty) before the chunks.</summary>
    public static Func<List<TextSearchResult>, string> Create(string? contextPrompt) => results => Format(results, contextPrompt);

    /// <summary>
    /// A <see cref="ChunkRecord"/> as a search result: its text as the value, its document as the name and its chunk id as
    /// the link (a <c>MapFromResultToTextSearchResult</c> for <c>VectorStoreTextSearch&lt;ChunkRecord&gt;</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The result is not a <see cref="ChunkRecord"/>.</exception>
    public static TextSearchResult ToTextSearchResult(object result)
    {
        var record = AsChunkRecord(result);
        return new TextSearchResult(record.Text) { Name = record.Document, Link = record.Id };
    }

    /// <summary>A <see cref="ChunkRecord"/>'s text (a <c>MapFromResultToString</c> for <c>VectorStoreTextSearch&lt;ChunkRecord&gt;</c>).</summary>
    /// <exception cref="ArgumentException">The result is not a <see cref="ChunkRecord"/>.</exception>
    public static string ToText(object result) => AsChunkRecord(result).Text;

    private static string Format(List<TextSearchResult> results, string? contextPrompt)
    {
        ArgumentNullException.ThrowIfNull(results);
        var text = new StringBuilder();
        if (!string.IsNullOrEmpty(contextPrompt))
        {
            text.Append(contextPrompt).Append('\n');
        }

        foreach (var result in results)
        {
            if (result is null || string.IsNullOrEmpty(result.Value))
            {
                continue;
            }

            text.Append(result.Value.Contains(KvFusionChunkMarkers.CloseTag, StringComparison.Ordinal)
                ? result.Value
                : KvFusionChunkMarkers.Wrap(result.Value, ChunkIdOf(result)));
            text.Append('\n');
            if (!string.IsNullOrEmpty(result.Name))
            {
                text.Append("Source: ").Append(result.Name).Append('\n');
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    private static string? ChunkIdOf(TextSearchResult result) =>
        ChunkId.TryParse(result.Link, out _) ? result.Link
        : ChunkId.TryParse(result.Name, out _) ? result.Name
        : null;

    private static ChunkRecord AsChunkRecord(object result) => result as ChunkRecord
        ?? throw new ArgumentException($"Expected a {nameof(ChunkRecord)}, got {result?.GetType().Name ?? "null"}.", nameof(result));
}
