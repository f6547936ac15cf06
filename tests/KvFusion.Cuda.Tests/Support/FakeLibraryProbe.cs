using System.IO.Enumeration;
using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>
/// A file system and loader in memory: files that exist (and load unless marked as failing), directories under
/// parents, and bare names the system loader would resolve. Every load attempt is recorded in order.
/// </summary>
internal sealed class FakeLibraryProbe : ILibraryProbe
{
    private readonly HashSet<string> _files = new(StringComparer.Ordinal);
    private readonly List<string> _directories = [];
    private readonly Dictionary<string, string> _failures = new(StringComparer.Ordinal);
    private readonly HashSet<string> _systemNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, nint> _handles = new(StringComparer.Ordinal);

    /// <summary>Every path or bare name passed to <see cref="TryLoad"/>, in call order.</summary>
    public List<string> LoadAttempts { get; } = [];

    /// <summary>The paths and names that loaded, in call order.</summary>
    public List<string> Loaded { get; } = [];

    /// <summary>A file that exists and loads.</summary>
    public FakeLibraryProbe WithFile(string path)
    {
        _files.Add(path);
        return this;
    }

    /// <summary>A file that exists but fails to load with <paramref name="error"/>.</summary>
    public FakeLibraryProbe WithBrokenFile(string path, string error)
    {
        _files.Add(path);
        _failures[path] = error;
        return this;
    }

    /// <summary>A directory (its parent is what <see cref="Directories"/> lists it under).</summary>
    public FakeLibraryProbe WithDirectory(string path)
    {
        _directories.Add(path);
        return this;
    }

    /// <summary>A bare file name the system loader's own search resolves.</summary>
    public FakeLibraryProbe WithSystemName(string name)
    {
        _systemNames.Add(name);
        return this;
    }

    /// <summary>The handle a successful load of <paramref name="pathOrName"/> returns.</summary>
    public nint HandleOf(string pathOrName)
    {
        if (!_handles.TryGetValue(pathOrName, out var handle))
        {
            handle = 0x1000 + (_handles.Count * 0x10);
            _handles[pathOrName] = handle;
        }

        return handle;
    }

    public bool FileExists(string path) => _files.Contains(path);

    public IEnumerable<string> Directories(string parent, string pattern) =>
        _directories.Where(d => Path.GetDirectoryName(d) == parent && FileSystemName.MatchesSimpleExpression(pattern, Path.GetFileName(d))).ToList();

    public IEnumerable<string> Files(string directory, string pattern) =>
        _files.Where(f => Path.GetDirectoryName(f) == directory && FileSystemName.MatchesSimpleExpression(pattern, Path.GetFileName(f))).ToList();

    public bool TryLoad(string pathOrName, out nint handle, out string error)
    {
        LoadAttempts.Add(pathOrName);
        var isPath = pathOrName.Contains('/', StringComparison.Ordinal);
        if (isPath && _failures.TryGetValue(pathOrName, out var failure))
        {
            handle = 0;
            error = failure;
            return false;
        }

        if ((isPath && _files.Contains(pathOrName)) || (!isPath && _systemNames.Contains(pathOrName)))
        {
            handle = HandleOf(pathOrName);
            error = string.Empty;
            Loaded.Add(pathOrName);
            return true;
        }

        handle = 0;
        error = $"{pathOrName}: cannot open shared object file: No such file or directory";
        return false;
    }
}
