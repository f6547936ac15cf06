namespace KvFusion.TestSupport;

/// <summary>
/// A fresh folder under the system temp folder for a test that writes files, deleted with everything in it when
/// disposed: use it with <c>using</c>, so no test leaves files behind.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvfusion-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>A copy of a model folder (small zoo models) that a test may damage; fingerprint caches are left out.</summary>
    public static TempDirectory CopyOf(string sourceDirectory)
    {
        var dir = new TempDirectory();
        foreach (var f in Directory.GetFiles(sourceDirectory))
        {
            var name = System.IO.Path.GetFileName(f);
            if (!name.StartsWith(".kvfusion", StringComparison.Ordinal))
            {
                File.Copy(f, dir.Combine(name));
            }
        }

        return dir;
    }

    public override string ToString() => Path;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
