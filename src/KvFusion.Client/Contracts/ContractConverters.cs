using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvFusion.Client.Contracts;

/// <summary>A message's content: a string, or OpenAI's list of parts of which only text parts are accepted.</summary>
public sealed class MessageContentConverter : JsonConverter<string?>
{
    /// <inheritdoc />
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.StartArray:
                var text = new StringBuilder();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    text.Append(ReadTextPart(ref reader));
                }

                return text.ToString();
            default:
                throw new JsonException("A message's content must be a string or a list of text parts.");
        }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options) => StringList.WriteString(writer, value);

    private static string ReadTextPart(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A content part must be an object like {\"type\": \"text\", \"text\": \"...\"}.");
        }

        string? type = null;
        string? text = null;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = reader.GetString();
            reader.Read();
            switch (name)
            {
                case "type":
                    type = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw new JsonException("A content part's type must be a string.");
                    break;
                case "text":
                    text = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw new JsonException("A content part's text must be a string.");
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (type != "text" || text is null)
        {
            throw new JsonException($"Only text content parts are supported, not '{type}'.");
        }

        return text;
    }
}

/// <summary>OpenAI's <c>stop</c>: one string or a list of strings.</summary>
public sealed class StopSequencesConverter : JsonConverter<IReadOnlyList<string>?>
{
    /// <inheritdoc />
    public override IReadOnlyList<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Null => null,
        JsonTokenType.String => [reader.GetString()!],
        JsonTokenType.StartArray => StringList.Read(ref reader, "stop"),
        _ => throw new JsonException("stop must be a string or a list of strings."),
    };

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, IReadOnlyList<string>? value, JsonSerializerOptions options) => StringList.Write(writer, value);
}

/// <summary>A completion's <c>prompt</c>: a string, or a list holding one string.</summary>
public sealed class PromptConverter : JsonConverter<string?>
{
    /// <inheritdoc />
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.StartArray:
                var list = StringList.Read(ref reader, "prompt");
                return list.Count == 1 ? list[0] : throw new JsonException("prompt must be a string or a list of exactly one string (n=1 batches are not supported).");
            default:
                throw new JsonException("prompt must be a string.");
        }
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, string? value, JsonSerializerOptions options) => StringList.WriteString(writer, value);
}

internal static class StringList
{
    public static void WriteString(Utf8JsonWriter writer, string? value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            writer.WriteStringValue(value);
        }
    }

    public static List<string> Read(ref Utf8JsonReader reader, string what)
    {
        var list = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            list.Add(reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new JsonException($"{what} must hold only strings."));
        }

        return list;
    }

    public static void Write(Utf8JsonWriter writer, IReadOnlyList<string>? value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (var s in value)
        {
            writer.WriteStringValue(s);
        }

        writer.WriteEndArray();
    }
}
