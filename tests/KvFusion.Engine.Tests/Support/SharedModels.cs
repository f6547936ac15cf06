using System.Text.Json;

namespace KvFusion.Engine.Tests.Support;

/// <summary>Finds ../shared/models from the test's directory (CI lays ../shared beside the checkout).</summary>
public static class SharedModels
{
    private static readonly Lazy<string?> Located = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "shared", "models");
            if (System.IO.Directory.Exists(System.IO.Path.Combine(candidate, "tiny-pydocs")))
            {
                return candidate;
            }
        }

        return null;
    });

    public static string Root => Located.Value ?? throw new SkipException("../shared/models is not present beside the checkout");

    public static string Path(string name) => System.IO.Path.Combine(Root, name);

    public static JsonDocument Golden(string name, string file = "golden.json") => JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(Path(name), file)));

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => x.GetSingle()).ToArray();
}
