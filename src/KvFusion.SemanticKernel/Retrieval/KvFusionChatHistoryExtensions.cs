using KvFusion.SemanticKernel.Retrieval;
using KvFusion.SemanticKernel.VectorStores;
using MeaiTextContent = Microsoft.Extensions.AI.TextContent;

// ChatHistory's own namespace, so the helper shows up wherever a history is built.
namespace Microsoft.SemanticKernel.ChatCompletion;

/// <summary>Adds retrieved chunks to a Semantic Kernel <see cref="ChatHistory"/> so that the KvFusion chat clients fuse them.</summary>
/// <remarks>
/// The message is a user message marked <see cref="KvFusionContent.RetrievedContextProperty"/> in its metadata, with one
/// <see cref="TextContent"/> per chunk whose metadata holds <see cref="KvFusionContent.ChunkIdProperty"/>. Semantic
/// Kernel's conversion to Microsoft.Extensions.AI messages (<c>AsChatCompletionService</c>, <c>ToChatMessage</c>) copies
/// message and item metadata into <c>AdditionalProperties</c>, so the chat client sees the ids; other connectors send
/// the chunks as text parts. Paths that keep only strings (prompt templates) need <see cref="KvFusionChunkMarkers"/>.
/// </remarks>
public static class KvFusionChatHistoryExtensions
{
    /// <summary>Adds a retrieved-context message holding <paramref name="chunks"/> (text and id, when known) in order.</summary>
    /// <returns>The message added.</returns>
    /// <exception cref="ArgumentException">No chunk, a chunk without text, or an id that is not 64 hex characters.</exception>
    public static ChatMessageContent AddKvFusionContext(this ChatHistory history, IEnumerable<(string Text, string? ChunkId)> chunks)
    {
        ArgumentNullException.ThrowIfNull(history);
        var message = ToChatMessageContent(KvFusionContent.RetrievedContext(chunks));
        history.Add(message);
        return message;
    }

    /// <summary>Adds a retrieved-context message holding the records' text and chunk ids, in order.</summary>
    /// <returns>The message added.</returns>
    /// <exception cref="ArgumentException">No record, a null record, a record without text, or an id that is not 64 hex characters.</exception>
    public static ChatMessageContent AddKvFusionContext(this ChatHistory history, IEnumerable<ChunkRecord> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        return history.AddKvFusionContext(chunks.Select((record, i) => record is null
            ? throw new ArgumentException($"Retrieved chunk {i} is null.", nameof(chunks))
            : KvFusionRetrievalChatClient.SelectChunk(record)));
    }

    /// <summary>The Semantic Kernel form of a Microsoft.Extensions.AI retrieved-context message: same items, same properties.</summary>
    private static ChatMessageContent ToChatMessageContent(Microsoft.Extensions.AI.ChatMessage context)
    {
        var items = new ChatMessageContentItemCollection();
        foreach (var content in context.Contents)
        {
            var text = (MeaiTextContent)content;
            items.Add(new TextContent(text.Text)
            {
                Metadata = text.AdditionalProperties is { } properties ? new Dictionary<string, object?>(properties) : null,
            });
        }

        return new ChatMessageContent(AuthorRole.User, items)
        {
            Metadata = new Dictionary<string, object?>(context.AdditionalProperties!),
        };
    }
}
