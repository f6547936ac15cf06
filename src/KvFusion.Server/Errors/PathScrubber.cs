namespace KvFusion.Server.Errors;

/// <summary>
/// Removes the service's own folders (model, data, content root) from text a client will see, so an error message can
/// never reveal where the service keeps its files.
/// </summary>
public sealed class PathScrubber
{
    private readonly List<string> _paths = [];
    private readonly Lock _lock = new();

    /// <summary>Adds a folder to remove (its full path).</summary>
    public void Add(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return;
        }

        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        lock (_lock)
        {
            if (!_paths.Contains(full))
            {
                _paths.Add(full);
                _paths.Sort((a, b) => b.Length.CompareTo(a.Length));
            }
        }
    }

    /// <summary>The text with every known folder replaced by <c>[path]</c>, and other absolute paths too.</summary>
    public string Scrub(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        lock (_lock)
        {
            foreach (var p in _paths)
            {
                text = text.Replace(p, "[path]", StringComparison.Ordinal);
            }
        }

        return text;
    }
}
