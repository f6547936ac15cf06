using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Evaluation;

/// <summary>
/// One fusion evaluation case (docs/fusion-cases.md): the prompt is <see cref="Prefix"/> (optional), then the
/// <see cref="Chunks"/> in order, then <see cref="Query"/>; <see cref="Answer"/> is the text that follows the query in
/// its source chunk, so the model has to draw it from one of the chunks, as in the CacheBlend evaluation.
/// Stored as JSON lines: <c>{"prefix":...,"chunks":[...],"query":...,"answer":...}</c>, prefix omitted when null.
/// </summary>
/// <param name="Prefix">System prompt before the chunks, or null.</param>
/// <param name="Chunks">The chunk texts, in prompt order.</param>
/// <param name="Query">The question: the start of a sentence of one chunk.</param>
/// <param name="Answer">The reference continuation: what follows the query in that chunk.</param>
public sealed record FusionCase(string? Prefix, IReadOnlyList<string> Chunks, string Query, string Answer)
{
    // Readable files: the chunks are documentation full of quotes, '<' and '&' that the default encoder would escape.
    // The files are data, never embedded in HTML, so the relaxed encoder is safe here.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Value equality, chunks compared element by element (a record would compare the list reference).</summary>
    public bool Equals(FusionCase? other) =>
        other is not null
        && string.Equals(Prefix, other.Prefix, StringComparison.Ordinal)
        && string.Equals(Query, other.Query, StringComparison.Ordinal)
        && string.Equals(Answer, other.Answer, StringComparison.Ordinal)
        && Chunks.SequenceEqual(other.Chunks, StringComparer.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Prefix, Query, Answer, Chunks.Count);

    /// <summary>Reads a JSON-lines file of cases; blank lines are skipped.</summary>
    /// <exception cref="InputFileException">A line is not a valid case, or the file cannot be read; the error names the file, line and field.</exception>
    public static IReadOnlyList<FusionCase> ReadJsonLines(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var cases = new List<FusionCase>();
        var lineNumber = 0;
        try
        {
            foreach (var line in File.ReadLines(path, Encoding.UTF8))
            {
                lineNumber++;
                if (!string.IsNullOrWhiteSpace(line))
                {
                    cases.Add(ParseLine(line, path, lineNumber));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputFileException(path, lineNumber > 0 ? lineNumber : null, null, $"cannot be read: {e.Message}", e);
        }

        return cases;
    }

    /// <summary>Writes cases as JSON lines (one object per line, '\n' endings), replacing the file atomically.</summary>
    public static void WriteJsonLines(string path, IEnumerable<FusionCase> cases)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(cases);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);

        // Written beside the target and moved over it, so a reader never sees half a file.
        var tmp = full + "." + Environment.ProcessId + ".tmp";
        try
        {
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                var buffer = new ArrayBufferWriter<byte>();
                foreach (var c in cases)
                {
                    ArgumentNullException.ThrowIfNull(c, nameof(cases));
                    buffer.ResetWrittenCount();
                    using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
                    {
                        c.WriteJson(writer);
                    }

                    stream.Write(buffer.WrittenSpan);
                    stream.WriteByte((byte)'\n');
                }
            }

            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            File.Delete(tmp); // No-op after the move; removes the partial file after a failure.
        }
    }

    /// <summary>Writes the case as one JSON object.</summary>
    public void WriteJson(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        if (Prefix is not null)
        {
            writer.WriteString("prefix", Prefix);
        }

        writer.WriteStartArray("chunks");
        foreach (var chunk in Chunks)
        {
            writer.WriteStringValue(chunk);
        }

        writer.WriteEndArray();
        writer.WriteString("query", Query);
        writer.WriteString("answer", Answer);
        writer.WriteEndObject();
    }

    /// <summary>Parses one JSON object; unknown properties are ignored so newer files stay readable.</summary>
    /// <param name="line">The line's text.</param>
    /// <param name="path">The file, for errors.</param>
    /// <param name="lineNumber">The 1-based line, for errors.</param>
    /// <exception cref="InputFileException">Not JSON, or JSON but not a case.</exception>
    internal static FusionCase ParseLine(string line, string path, int lineNumber)
    {
        InputFileException Bad(string? field, string problem, Exception? inner = null) => new(path, lineNumber, field, problem, inner);

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw Bad(null, $"not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Bad(null, $"expected a JSON object, got {Describe(root.ValueKind)}.");
            }

            string? prefix = null;
            if (root.TryGetProperty("prefix", out var p) && p.ValueKind != JsonValueKind.Null)
            {
                prefix = p.ValueKind == JsonValueKind.String ? p.GetString() : throw Bad("prefix", $"must be a string or null, got {Describe(p.ValueKind)}.");
            }

            if (!root.TryGetProperty("chunks", out var chunksElement))
            {
                throw Bad("chunks", "missing; a case needs its chunks.");
            }

            if (chunksElement.ValueKind != JsonValueKind.Array)
            {
                throw Bad("chunks", $"must be an array of strings, got {Describe(chunksElement.ValueKind)}.");
            }

            var chunks = new List<string>(chunksElement.GetArrayLength());
            foreach (var chunk in chunksElement.EnumerateArray())
            {
                chunks.Add(chunk.ValueKind == JsonValueKind.String
                    ? chunk.GetString()!
                    : throw Bad(string.Create(CultureInfo.InvariantCulture, $"chunks[{chunks.Count}]"), $"must be a string, got {Describe(chunk.ValueKind)}."));
            }

            if (chunks.Count == 0)
            {
                throw Bad("chunks", "is empty; a case needs at least one chunk.");
            }

            return new FusionCase(prefix, chunks, RequiredString(root, "query", Bad), RequiredString(root, "answer", Bad));
        }
    }

    private static string RequiredString(JsonElement root, string name, Func<string?, string, Exception?, InputFileException> bad)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            throw bad(name, "missing; a case needs it.", null);
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw bad(name, $"must be a string, got {Describe(value.ValueKind)}.", null);
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
