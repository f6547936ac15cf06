using System.Text.Json;
using KvFusion.Cache.Keys;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>
/// Retrieved chunks as Microsoft.Extensions.AI content: a user message marked as retrieved context whose
/// <see cref="TextContent"/> items each carry a chunk's exact text and, in their additional properties, its id. The KvFusion
/// chat clients fuse those chunks' stored caches; any other provider reads the message as plain text.
/// </summary>
public static class KvFusionContent
{
    /// <summary>The <see cref="AIContent.AdditionalProperties"/> key of a chunk's id (64 lowercase hex characters).</summary>
    public const string ChunkIdProperty = "kvfusion.chunk_id";

    /// <summary>The <see cref="ChatMessage.AdditionalProperties"/> key (value <c>true</c>) marking a retrieved-context message.</summary>
    public const string RetrievedContextProperty = "kvfusion.retrieved_context";

    /// <summary>The text between two chunks' items, so other providers do not read the chunks run together.</summary>
    /// <remarks>Whitespace-only items without an id in a retrieved-context message are layout, not chunks.</remarks>
    public const string Separator = "\n\n";

    /// <summary>
    /// The retrieved-context message: role <see cref="ChatRole.User"/>, one <see cref="TextContent"/> per chunk (with its id
    /// when known; a chunk without id is precomputed from its text by the KvFusion chat clients), separated by
    /// <see cref="Separator"/> items.
    /// </summary>
    /// <exception cref="ArgumentException">No chunk, a chunk with null or empty text, or an id that is not 64 hex characters.</exception>
    public static ChatMessage RetrievedContext(IEnumerable<(string Text, string? ChunkId)> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        var contents = new List<AIContent>();
        var index = 0;
        foreach (var (text, chunkId) in chunks)
        {
            if (string.IsNullOrEmpty(text))
            {
                throw new ArgumentException($"Retrieved chunk {index} has no text.", nameof(chunks));
            }

            if (chunkId is not null && !ChunkId.TryParse(chunkId, out _))
            {
                throw new ArgumentException($"Retrieved chunk {index} has the id '{chunkId}', which is not {ChunkId.HexLength} hex characters.", nameof(chunks));
            }

            if (index > 0)
            {
                contents.Add(new TextContent(Separator));
            }

            var item = new TextContent(text);
            if (chunkId is not null)
            {
                item.AdditionalProperties = new AdditionalPropertiesDictionary { [ChunkIdProperty] = chunkId.ToLowerInvariant() };
            }

            contents.Add(item);
            index++;
        }

        if (index == 0)
        {
            throw new ArgumentException("The retrieved context holds no chunk.", nameof(chunks));
        }

        return new ChatMessage(ChatRole.User, contents)
        {
            AdditionalProperties = new AdditionalPropertiesDictionary { [RetrievedContextProperty] = true },
        };
    }

    /// <summary>True when <paramref name="message"/> is marked as retrieved context (also after a JSON round trip).</summary>
    public static bool IsRetrievedContext(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.AdditionalProperties is null || !message.AdditionalProperties.TryGetValue(RetrievedContextProperty, out var value))
        {
            return false;
        }

        return value switch
        {
            bool flag => flag,
            string text => bool.TryParse(text, out var parsed) && parsed,
            JsonElement { ValueKind: JsonValueKind.True } => true,
            JsonElement { ValueKind: JsonValueKind.String } element => bool.TryParse(element.GetString(), out var parsed) && parsed,
            _ => false,
        };
    }

    /// <summary>
    /// The chunk id an item carries in <see cref="ChunkIdProperty"/> (a string, a <see cref="ChunkId"/> or a JSON string), as
    /// written; null when it has none. The id is not validated here: the chat clients reject a malformed one.
    /// </summary>
    public static string? ChunkIdOf(AIContent content)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (content.AdditionalProperties is null || !content.AdditionalProperties.TryGetValue(ChunkIdProperty, out var value))
        {
            return null;
        }

        return value switch
        {
            string text => text,
            ChunkId id => id.ToString(),
            JsonElement { ValueKind: JsonValueKind.String } element => element.GetString(),
            null => null,
            _ => value.ToString(),
        };
    }
}
