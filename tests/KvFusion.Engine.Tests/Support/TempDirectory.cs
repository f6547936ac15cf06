namespace KvFusion.Engine.Tests.Support;

/// <summary>Fresh directories under the system temp folder for tests that write files.</summary>
public static class TempDirectory
{
    public static string Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kvfusion-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Copies a shared model directory (small zoo models) so a test can damage the copy.</summary>
    public static string CopyOf(string sourceDirectory)
    {
        var dir = Create();
        foreach (var f in Directory.GetFiles(sourceDirectory))
        {
            if (!Path.GetFileName(f).StartsWith(".kvfusion", StringComparison.Ordinal))
            {
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            }
        }

        return dir;
    }
}
