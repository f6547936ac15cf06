using System.Globalization;
using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>The native libraries the CUDA backend binds.</summary>
public enum CudaLibraryKind
{
    /// <summary>The CUDA driver API (<c>libcuda.so.1</c>), installed with the NVIDIA driver.</summary>
    Driver,

    /// <summary>The runtime compiler (<c>libnvrtc.so</c>), from the CUDA toolkit.</summary>
    Nvrtc,

    /// <summary>cuBLAS (<c>libcublas.so</c>), from the CUDA toolkit.</summary>
    Cublas,
}

/// <summary>A native library that was found and loaded.</summary>
/// <param name="Kind">Which library.</param>
/// <param name="Path">The file that was loaded, or the bare name the system loader resolved.</param>
/// <param name="Handle">The loader's handle.</param>
public readonly record struct LoadedCudaLibrary(CudaLibraryKind Kind, string Path, nint Handle);

/// <summary>
/// Finds the CUDA libraries: first the folder in <c>KVFUSION_CUDA_LIB_DIR</c>, then the usual install paths
/// (<c>/usr/local/cuda/lib64</c>, <c>/usr/local/cuda-*/targets/x86_64-linux/lib</c> newest first, the driver's
/// <c>/usr/local/nvidia/lib64</c>, the distribution's library folder), then the system loader's own search. Newer
/// sonames are preferred (CUDA 13, then 12, then 11).
/// </summary>
public sealed class CudaLibraryLocator
{
    /// <summary>The environment variable that names a folder to search first.</summary>
    public const string DirectoryVariable = "KVFUSION_CUDA_LIB_DIR";

    private static readonly string[] StandardDirectories =
    [
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/targets/x86_64-linux/lib",
    ];

    private static readonly string[] SystemDirectories =
    [
        "/usr/local/nvidia/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib/wsl/lib",
    ];

    private readonly ILibraryProbe _probe;
    private readonly string? _overrideDirectory;

    internal CudaLibraryLocator(ILibraryProbe probe, string? overrideDirectory)
    {
        _probe = probe;
        _overrideDirectory = string.IsNullOrWhiteSpace(overrideDirectory) ? null : overrideDirectory;
    }

    /// <summary>A locator reading <c>KVFUSION_CUDA_LIB_DIR</c> and the real file system and loader.</summary>
    public static CudaLibraryLocator FromEnvironment() =>
        new(NativeLibraryProbe.Instance, Environment.GetEnvironmentVariable(DirectoryVariable));

    /// <summary>The file names tried for a library, most preferred first.</summary>
    public static IReadOnlyList<string> FileNames(CudaLibraryKind kind) => kind switch
    {
        CudaLibraryKind.Driver => ["libcuda.so.1", "libcuda.so"],
        CudaLibraryKind.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        CudaLibraryKind.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown CUDA library."),
    };

    /// <summary>The folders searched, in order (the loader's default search comes after them).</summary>
    public IReadOnlyList<string> SearchDirectories()
    {
        var list = new List<string>();
        if (_overrideDirectory is not null)
        {
            list.Add(_overrideDirectory);
        }

        list.AddRange(StandardDirectories);
        var versioned = new List<(Version Version, string Path)>();
        foreach (var dir in _probe.Directories("/usr/local", "cuda-*"))
        {
            var suffix = System.IO.Path.GetFileName(dir)["cuda-".Length..];
            if (Version.TryParse(suffix.Contains('.', StringComparison.Ordinal) ? suffix : suffix + ".0", out var version))
            {
                versioned.Add((version, dir));
            }
        }

        versioned.Sort((a, b) => b.Version.CompareTo(a.Version));
        foreach (var (_, dir) in versioned)
        {
            list.Add(System.IO.Path.Combine(dir, "targets", "x86_64-linux", "lib"));
            list.Add(System.IO.Path.Combine(dir, "lib64"));
        }

        list.AddRange(SystemDirectories);
        var unique = new List<string>(list.Count);
        foreach (var d in list)
        {
            if (!unique.Contains(d))
            {
                unique.Add(d);
            }
        }

        return unique;
    }

    /// <summary>Finds and loads a library.</summary>
    /// <exception cref="CudaLibraryNotFoundException">No candidate could be loaded; the message lists every place tried.</exception>
    public LoadedCudaLibrary Load(CudaLibraryKind kind)
    {
        if (TryLoad(kind, out var library, out var error))
        {
            return library;
        }

        throw new CudaLibraryNotFoundException(error);
    }

    /// <summary>Finds and loads a library, or explains why none could be loaded.</summary>
    public bool TryLoad(CudaLibraryKind kind, out LoadedCudaLibrary library, out string error)
    {
        var names = FileNames(kind);
        var failures = new List<string>();
        var directories = SearchDirectories();
        foreach (var dir in directories)
        {
            foreach (var name in names)
            {
                var path = System.IO.Path.Combine(dir, name);
                if (!_probe.FileExists(path))
                {
                    continue;
                }

                if (_probe.TryLoad(path, out var handle, out var loadError))
                {
                    PreloadCompanions(kind, dir, name);
                    library = new LoadedCudaLibrary(kind, path, handle);
                    error = string.Empty;
                    return true;
                }

                failures.Add($"{path}: {loadError}");
            }
        }

        foreach (var name in names)
        {
            if (_probe.TryLoad(name, out var handle, out _))
            {
                library = new LoadedCudaLibrary(kind, name, handle);
                error = string.Empty;
                return true;
            }
        }

        library = default;
        error = Describe(kind, names, directories, failures);
        return false;
    }

    // NVRTC loads its builtins library and cuBLAS its Lt library by soname; when they sit in a folder the loader
    // does not search, loading them first by path lets those lookups succeed.
    private void PreloadCompanions(CudaLibraryKind kind, string dir, string name)
    {
        string? pattern = kind switch
        {
            CudaLibraryKind.Nvrtc => "libnvrtc-builtins.so.*",
            CudaLibraryKind.Cublas => "libcublasLt.so" + name["libcublas.so".Length..],
            _ => null,
        };
        if (pattern is null)
        {
            return;
        }

        var candidates = new List<string>(_probe.Files(dir, pattern));
        candidates.Sort((a, b) => SonameVersion(a).CompareTo(SonameVersion(b)));
        for (var i = candidates.Count - 1; i >= 0; i--)
        {
            if (_probe.TryLoad(candidates[i], out _, out _))
            {
                return;
            }
        }
    }

    /// <summary>The version after ".so." of a library file name (e.g. 12.9 of libnvrtc-builtins.so.12.9), or 0.0.</summary>
    private static Version SonameVersion(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        var at = name.IndexOf(".so.", StringComparison.Ordinal);
        if (at < 0)
        {
            return new Version(0, 0);
        }

        var suffix = name[(at + 4)..];
        return Version.TryParse(suffix.Contains('.', StringComparison.Ordinal) ? suffix : suffix + ".0", out var v) ? v : new Version(0, 0);
    }

    private string Describe(CudaLibraryKind kind, IReadOnlyList<string> names, IReadOnlyList<string> directories, List<string> failures)
    {
        var what = kind switch
        {
            CudaLibraryKind.Driver => "the CUDA driver library (installed with the NVIDIA driver)",
            CudaLibraryKind.Nvrtc => "NVRTC, the CUDA runtime compiler (CUDA toolkit)",
            _ => "cuBLAS (CUDA toolkit)",
        };
        var text = string.Create(CultureInfo.InvariantCulture,
            $"Could not load {what}: tried {string.Join(", ", names)} in {string.Join(", ", directories)}");
        text += _overrideDirectory is null
            ? $" and on the system loader's path. Set {DirectoryVariable} to the folder that holds {names[0]}."
            : $" ({DirectoryVariable}={_overrideDirectory}) and on the system loader's path.";
        if (failures.Count > 0)
        {
            text += " Found but failed to load: " + string.Join("; ", failures);
        }

        return text;
    }
}

/// <summary>File-system and loader access of <see cref="CudaLibraryLocator"/> (replaced in tests).</summary>
internal interface ILibraryProbe
{
    bool FileExists(string path);

    IEnumerable<string> Directories(string parent, string pattern);

    IEnumerable<string> Files(string directory, string pattern);

    bool TryLoad(string pathOrName, out nint handle, out string error);
}

/// <summary>The real file system and <see cref="NativeLibrary"/>.</summary>
internal sealed class NativeLibraryProbe : ILibraryProbe
{
    public static readonly NativeLibraryProbe Instance = new();

    public bool FileExists(string path) => File.Exists(path);

    public IEnumerable<string> Directories(string parent, string pattern) =>
        Directory.Exists(parent) ? Directory.EnumerateDirectories(parent, pattern) : [];

    public IEnumerable<string> Files(string directory, string pattern) =>
        Directory.Exists(directory) ? Directory.EnumerateFiles(directory, pattern) : [];

    public bool TryLoad(string pathOrName, out nint handle, out string error)
    {
        try
        {
            handle = NativeLibrary.Load(pathOrName);
            error = string.Empty;
            return true;
        }
        catch (DllNotFoundException e)
        {
            handle = 0;
            error = e.Message;
            return false;
        }
        catch (BadImageFormatException e)
        {
            handle = 0;
            error = e.Message;
            return false;
        }
    }
}
