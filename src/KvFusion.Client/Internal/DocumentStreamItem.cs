using System.Text.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.Client.Internal;

/// <summary>A payload event of a streamed document: a <c>progress</c> event or the final <c>document</c>.</summary>
internal sealed record DocumentStreamItem(DocumentProgress? Progress, DocumentInfo? Document)
{
    /// <summary>The event type of progress events.</summary>
    public const string ProgressEvent = "progress";

    /// <summary>The event type of the final event.</summary>
    public const string DocumentEvent = "document";

    /// <summary>Parses a <c>progress</c> or <c>document</c> event; null for any other event type.</summary>
    public static DocumentStreamItem? Parse(string eventType, ReadOnlySpan<byte> data) => eventType switch
    {
        ProgressEvent => new DocumentStreamItem(
            JsonSerializer.Deserialize(data, KvFusionJsonContext.Default.DocumentProgress) ?? throw new JsonException("A progress event held null."),
            null),
        DocumentEvent => new DocumentStreamItem(
            null,
            JsonSerializer.Deserialize(data, KvFusionJsonContext.Default.DocumentInfo) ?? throw new JsonException("A document event held null.")),
        _ => null,
    };
}
