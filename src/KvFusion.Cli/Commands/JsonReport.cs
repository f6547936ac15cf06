using System.Text.Json;

namespace KvFusion.Cli.Commands;

/// <summary>Writes a benchmark or harness report: creates the folder and opens an indented JSON object with model and device.</summary>
internal sealed class JsonReport : IDisposable
{
    private readonly FileStream _stream;

    private JsonReport(string path, string model, string device)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }

        _stream = File.Create(path);
        Writer = new Utf8JsonWriter(_stream, new JsonWriterOptions { Indented = true });
        Writer.WriteStartObject();
        Writer.WriteString("model", model);
        Writer.WriteString("device", device);
    }

    public Utf8JsonWriter Writer { get; }

    public static JsonReport Create(string path, string model, string device) => new(path, model, device);

    public void Dispose()
    {
        Writer.WriteEndObject();
        Writer.Dispose();
        _stream.Dispose();
    }
}
