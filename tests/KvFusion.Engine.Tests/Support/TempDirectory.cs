namespace KvFusion.Engine.Tests.Support;

/// <summary>
/// Fresh directories under the system temp folder for tests that write files: an instance is deleted on dispose;
/// <see cref="Create"/> and <see cref="CopyOf"/> leave theirs for the OS to clean.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Create();

    public string Path { get; }

    public string Combine(string name) => System.IO.Path.Combine(Path, name);

    public static string Create()
    {
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvfusion-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Copies a shared model directory (small zoo models) so a test can damage the copy.</summary>
    public static string CopyOf(string sourceDirectory)
    {
        var dir = Create();
        foreach (var f in Directory.GetFiles(sourceDirectory))
        {
            if (!System.IO.Path.GetFileName(f).StartsWith(".kvfusion", StringComparison.Ordinal))
            {
                File.Copy(f, System.IO.Path.Combine(dir, System.IO.Path.GetFileName(f)));
            }
        }

        return dir;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
