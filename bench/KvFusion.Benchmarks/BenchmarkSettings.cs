using KvFusion.Engine.Models;

namespace KvFusion.Benchmarks;

/// <summary>What to measure, after defaults are resolved.</summary>
internal sealed record BenchmarkSettings(
    string ModelDirectory,
    string GgufPath,
    IReadOnlyList<int> PromptTokens,
    int GenTokens,
    IReadOnlyList<int> Threads,
    int Rounds,
    int Runs,
    string? JsonPath)
{
    /// <summary>
    /// The model directory: as given, else the shared tiny-pydocs found by walking up from the current directory
    /// (the engine's own resolution, so both CLIs agree on the default).
    /// </summary>
    public static string ResolveModel(string? model) => Engine.Models.ModelDirectory.Resolve(model);

    /// <summary>
    /// The GGUF: as given, else the model directory's <c>NAME-f16.gguf</c> (tiny-pydocs-f16.gguf for the default),
    /// else its only *.gguf file.
    /// </summary>
    public static string ResolveGguf(string? gguf, string modelDirectory)
    {
        if (!string.IsNullOrWhiteSpace(gguf))
        {
            return File.Exists(gguf) ? Path.GetFullPath(gguf) : throw new BenchmarkException($"GGUF file not found: {gguf}");
        }

        var named = Path.Combine(modelDirectory, Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDirectory)) + "-f16.gguf");
        if (File.Exists(named))
        {
            return named;
        }

        var all = Directory.GetFiles(modelDirectory, "*.gguf");
        return all.Length == 1
            ? all[0]
            : throw new BenchmarkException($"No GGUF given and {modelDirectory} has {all.Length} *.gguf files; pass --gguf FILE.");
    }
}

/// <summary>A user-facing error: printed as one line, exit code 1.</summary>
internal sealed class BenchmarkException(string message) : Exception(message);
