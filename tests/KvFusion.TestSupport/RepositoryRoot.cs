namespace KvFusion.TestSupport;

/// <summary>The repository checkout the tests run from (the folder that holds Middleware.sln).</summary>
public static class RepositoryRoot
{
    private static readonly Lazy<string> Root = new(Find);

    public static string Path => Root.Value;

    /// <summary>The repository's kernels/ folder.</summary>
    public static string KernelDirectory => System.IO.Path.Combine(Path, "kernels");

    /// <summary>A path below the repository root.</summary>
    public static string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Middleware.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Middleware.sln above {AppContext.BaseDirectory}.");
    }
}
