using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace KvFusion.Engine.Models;

/// <summary>
/// Strict reads of the JSON files of a model folder: a field that is present must have the expected kind (null
/// counts as absent, as transformers writes it), and every failure is a <see cref="ModelLoadException"/> that names
/// the file and the field, never a <see cref="JsonException"/> or an <see cref="InvalidOperationException"/>.
/// <see cref="JsonDocument.Parse(ReadOnlyMemory{byte}, JsonDocumentOptions)"/> accepts strings that are not valid
/// Unicode (invalid UTF-8 bytes, an escaped lone surrogate) and leaves them to throw when the string is read, so
/// <see cref="Parse"/> checks every string and property name once, before any reader walks the document.
/// </summary>
internal static class ModelJson
{
    /// <summary>Reads and parses a JSON file; I/O and syntax errors name the file.</summary>
    public static JsonDocument ParseFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ModelLoadException.InFile(path, $"cannot be read: {e.Message}", e);
        }

        return Parse(bytes, path, "is not valid JSON");
    }

    /// <summary>
    /// Parses UTF-8 JSON read from <paramref name="path"/>: bytes that are not UTF-8, a syntax error and a string
    /// that is not valid Unicode text are each a <see cref="ModelLoadException"/> naming the file.
    /// </summary>
    /// <param name="bytes">The JSON text.</param>
    /// <param name="path">The file it came from, for the messages.</param>
    /// <param name="notJson">How a syntax error starts (e.g. <c>is not valid JSON</c>).</param>
    public static JsonDocument Parse(byte[] bytes, string path, string notJson)
    {
        if (!Utf8.IsValid(bytes))
        {
            throw ModelLoadException.InFile(
                path, string.Create(CultureInfo.InvariantCulture, $"is not valid UTF-8 text: the byte at offset {FirstInvalidUtf8(bytes)} does not decode (JSON must be UTF-8)."));
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw ModelLoadException.InFile(path, $"{notJson}: {e.Message}", e);
        }

        try
        {
            RequireValidText(doc.RootElement, path, "");
            return doc;
        }
        catch
        {
            doc.Dispose();
            throw;
        }
    }

    /// <summary>Offset of the first byte that does not start a valid UTF-8 sequence.</summary>
    private static long FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var offset = 0;
        while (offset < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }

            offset += consumed;
        }

        return offset;
    }

    /// <summary>
    /// Reads every string and property name once: an escaped lone surrogate (<c>"\ud800"</c>) parses but cannot
    /// be turned into a string, which is named here with its field instead of surfacing later as an
    /// <see cref="InvalidOperationException"/>.
    /// </summary>
    private static void RequireValidText(JsonElement e, string file, string at)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                try
                {
                    _ = e.GetString();
                }
                catch (InvalidOperationException ex)
                {
                    throw ModelLoadException.InJson(file, at.Length == 0 ? "$" : at, $"is not valid Unicode text: {ex.Message}", ex);
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    RequireValidText(item, file, string.Create(CultureInfo.InvariantCulture, $"{at}[{i++}]"));
                }

                break;
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = p.Name;
                    }
                    catch (InvalidOperationException ex)
                    {
                        throw ModelLoadException.InJson(file, at.Length == 0 ? "$" : at, $"has a property name that is not valid Unicode text: {ex.Message}", ex);
                    }

                    RequireValidText(p.Value, file, at.Length == 0 ? name : $"{at}.{name}");
                }

                break;
        }
    }

    /// <summary>The property, or false when it is absent or null.</summary>
    public static bool TryGet(JsonElement obj, string name, out JsonElement value) =>
        obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    public static string? OptionalString(JsonElement obj, string name, string file, string prefix = "") =>
        !TryGet(obj, name, out var e) ? null
        : e.ValueKind == JsonValueKind.String ? e.GetString()
        : throw WrongKind(file, prefix + name, "a string", e);

    public static int? OptionalInt(JsonElement obj, string name, string file, string prefix = "") =>
        !TryGet(obj, name, out var e) ? null : Int(e, file, prefix + name);

    public static double? OptionalDouble(JsonElement obj, string name, string file, string prefix = "")
    {
        if (!TryGet(obj, name, out var e))
        {
            return null;
        }

        // TryGetDouble fails for numbers beyond double's range (1e400), where GetDouble would throw.
        return e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var v) && double.IsFinite(v)
            ? v
            : throw WrongKind(file, prefix + name, "a finite number", e);
    }

    public static bool? OptionalBool(JsonElement obj, string name, string file, string prefix = "") =>
        !TryGet(obj, name, out var e) ? null
        : e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.ValueKind == JsonValueKind.True
        : throw WrongKind(file, prefix + name, "true or false", e);

    /// <summary>The property as an object, or null when absent or null.</summary>
    public static JsonElement? OptionalObject(JsonElement obj, string name, string file, string prefix = "") =>
        !TryGet(obj, name, out var e) ? null
        : e.ValueKind == JsonValueKind.Object ? e
        : throw WrongKind(file, prefix + name, "an object", e);

    /// <summary>A 32-bit integer element.</summary>
    public static int Int(JsonElement e, string file, string path) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) ? v : throw WrongKind(file, path, "an integer in the 32-bit range", e);

    /// <summary>The error for a value of the wrong kind; the value itself is quoted when short.</summary>
    public static ModelLoadException WrongKind(string file, string path, string expected, JsonElement actual) =>
        ModelLoadException.InJson(file, path, $"must be {expected}, got {Describe(actual)}.");

    /// <summary>Names a value for a message: its kind, and its text when it is a short scalar.</summary>
    public static string Describe(JsonElement e)
    {
        var kind = e.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "an array",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "the number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            JsonValueKind.Null => "null",
            _ => "nothing",
        };
        if (e.ValueKind is JsonValueKind.Number or JsonValueKind.String)
        {
            var raw = e.GetRawText();
            return raw.Length <= 40 ? string.Create(CultureInfo.InvariantCulture, $"{kind} {raw}") : kind;
        }

        return kind;
    }
}
