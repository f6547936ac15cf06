using System.Net.ServerSentEvents;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using KvFusion.Client.Contracts;

namespace KvFusion.Client.Internal;

/// <summary>What one server-sent event of a KvFusion stream is.</summary>
internal enum StreamEventKind
{
    /// <summary>An event the client does not know (or one without data): skipped.</summary>
    Ignored,

    /// <summary>A payload: a completion chunk, a document progress event or the document.</summary>
    Item,

    /// <summary><c>data: [DONE]</c>, the end of an OpenAI-style stream.</summary>
    Done,

    /// <summary><c>event: error</c> with problem details.</summary>
    Error,
}

/// <summary>One parsed event: its kind, its payload or its problem.</summary>
internal readonly record struct StreamEvent<T>(StreamEventKind Kind, string EventType, T? Item, ProblemDetailsPayload? Problem);

/// <summary>
/// Reads the server-sent events of a KvFusion response with the BCL's <see cref="SseParser"/> (which handles
/// <c>event:</c>, multi-line <c>data:</c>, comments and blank-line dispatch), parsing each event's data from its UTF-8
/// bytes straight into the wire type.
/// </summary>
internal static class ServerSentEventReader
{
    /// <summary>The event type of an event without an <c>event:</c> field.</summary>
    public const string MessageEvent = SseParser.EventTypeDefault;

    /// <summary>The event type of a failure mid-stream.</summary>
    public const string ErrorEvent = "error";

    /// <summary>
    /// Events of an OpenAI-style stream: <c>data: {json}</c> messages parsed as <typeparamref name="T"/>, then
    /// <c>data: [DONE]</c>; <c>event: error</c> carries problem details.
    /// </summary>
    public static IAsyncEnumerable<SseItem<StreamEvent<T>>> ReadOpenAIStyleAsync<T>(Stream stream, JsonTypeInfo<T> itemType, CancellationToken cancellationToken) =>
        SseParser.Create(stream, (eventType, data) => ParseOpenAIStyle(eventType, data, itemType)).EnumerateAsync(cancellationToken);

    /// <summary>
    /// Events of a named-event stream: the events <paramref name="parseItem"/> knows parsed by it,
    /// <c>event: error</c> as problem details, every other event ignored.
    /// </summary>
    public static IAsyncEnumerable<SseItem<StreamEvent<T>>> ReadNamedAsync<T>(Stream stream, SseItemParser<T?> parseItem, CancellationToken cancellationToken) =>
        SseParser.Create(stream, (eventType, data) => ParseNamed(eventType, data, parseItem)).EnumerateAsync(cancellationToken);

    /// <summary>Parses one event of an OpenAI-style stream.</summary>
    public static StreamEvent<T> ParseOpenAIStyle<T>(string eventType, ReadOnlySpan<byte> data, JsonTypeInfo<T> itemType)
    {
        if (eventType == ErrorEvent)
        {
            return ParseError<T>(eventType, data);
        }

        var trimmed = data.Trim(" \t\r\n"u8);
        if (eventType != MessageEvent || trimmed.IsEmpty)
        {
            return new StreamEvent<T>(StreamEventKind.Ignored, eventType, default, null);
        }

        if (trimmed.SequenceEqual("[DONE]"u8))
        {
            return new StreamEvent<T>(StreamEventKind.Done, eventType, default, null);
        }

        var item = JsonSerializer.Deserialize(trimmed, itemType)
            ?? throw new JsonException($"A server-sent event held null instead of a {typeof(T).Name}.");
        return new StreamEvent<T>(StreamEventKind.Item, eventType, item, null);
    }

    /// <summary>Parses one event of a named-event stream.</summary>
    public static StreamEvent<T> ParseNamed<T>(string eventType, ReadOnlySpan<byte> data, SseItemParser<T?> parseItem)
    {
        if (eventType == ErrorEvent)
        {
            return ParseError<T>(eventType, data);
        }

        var item = parseItem(eventType, data);
        return item is null
            ? new StreamEvent<T>(StreamEventKind.Ignored, eventType, default, null)
            : new StreamEvent<T>(StreamEventKind.Item, eventType, item, null);
    }

    /// <summary>An <c>error</c> event: its problem details, or its text as the detail when it is not JSON.</summary>
    private static StreamEvent<T> ParseError<T>(string eventType, ReadOnlySpan<byte> data)
    {
        var problem = ProblemDetailsPayload.TryParse(data) ?? new ProblemDetailsPayload
        {
            Title = "Stream failed",
            Detail = data.IsEmpty ? "The service sent an error event without details." : System.Text.Encoding.UTF8.GetString(data),
        };
        return new StreamEvent<T>(StreamEventKind.Error, eventType, default, problem);
    }
}
