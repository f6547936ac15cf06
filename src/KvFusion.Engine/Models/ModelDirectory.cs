namespace KvFusion.Engine.Models;

/// <summary>Finds the model directory to use: an explicit path, <c>KVFUSION_MODEL</c>, or the shared default.</summary>
public static class ModelDirectory
{
    /// <summary>Environment variable that names the default model directory.</summary>
    public const string EnvironmentVariable = "KVFUSION_MODEL";

    /// <summary>The shared default, relative to the repository's parent (CI lays ../shared beside the checkout).</summary>
    public const string SharedDefault = "shared/models/tiny-pydocs";

    /// <summary>
    /// Resolves the model directory: <paramref name="explicitPath"/>, else <c>KVFUSION_MODEL</c>, else
    /// <c>../shared/models/tiny-pydocs</c> found from the working directory or the program's directory upwards.
    /// </summary>
    /// <exception cref="ModelLoadException">Nothing found; the message says how to point at a model.</exception>
    public static string Resolve(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            return Directory.Exists(explicitPath)
                ? Path.GetFullPath(explicitPath)
                : throw new ModelLoadException($"Model directory not found: {explicitPath}") { FilePath = explicitPath };
        }

        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            return Directory.Exists(env)
                ? Path.GetFullPath(env)
                : throw new ModelLoadException($"{EnvironmentVariable}={env} is not a directory.") { FilePath = env };
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, SharedDefault);
                if (File.Exists(Path.Combine(candidate, "config.json")))
                {
                    return candidate;
                }
            }
        }

        throw new ModelLoadException(
            $"No model given. Pass --model DIR (a Hugging Face model directory), set {EnvironmentVariable}, or run from a checkout that has ../{SharedDefault}.");
    }
}
