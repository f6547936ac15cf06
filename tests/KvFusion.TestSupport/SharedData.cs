using System.Text.Json;
using Xunit;

namespace KvFusion.TestSupport;

/// <summary>
/// Finds ../shared beside the checkout (CI lays it there; models, corpus and anchors live in it). Tests that need it
/// skip with a stated reason when it is absent.
/// </summary>
public static class SharedData
{
    private static readonly Lazy<string?> Located = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "models", "tiny-pydocs")))
            {
                return candidate;
            }
        }

        return null;
    });

    /// <summary>The shared folder, or a skip when the checkout has none beside it.</summary>
    public static string Root => Located.Value ?? throw new SkipException("../shared (models, corpus) is not present beside the checkout");

    /// <summary>Whether ../shared was found.</summary>
    public static bool IsPresent => Located.Value is not null;

    /// <summary>A path below the shared folder; skips when that file or folder is missing.</summary>
    public static string Path(params string[] parts)
    {
        var path = System.IO.Path.Combine([Root, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new SkipException($"shared/{string.Join('/', parts)} is not present beside the checkout");
        }

        return path;
    }
}

/// <summary>The model folders in ../shared/models and their golden outputs.</summary>
public static class SharedModels
{
    /// <summary>The models folder.</summary>
    public static string Root => SharedData.Path("models");

    /// <summary>A model folder, for example "tiny-pydocs" or "zoo/mistral".</summary>
    public static string Path(string name) => SharedData.Path(["models", .. name.Split('/')]);

    /// <summary>Parses a JSON file of a model folder (golden.json by default).</summary>
    public static JsonDocument Golden(string name, string file = "golden.json") =>
        JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(Path(name), file)));

    public static int[] Ints(JsonElement e)
    {
        var result = new int[e.GetArrayLength()];
        var i = 0;
        foreach (var x in e.EnumerateArray())
        {
            result[i++] = x.GetInt32();
        }

        return result;
    }

    public static float[] Floats(JsonElement e)
    {
        var result = new float[e.GetArrayLength()];
        var i = 0;
        foreach (var x in e.EnumerateArray())
        {
            result[i++] = x.GetSingle();
        }

        return result;
    }
}
