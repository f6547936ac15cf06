using System.Reflection;
using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>
/// Connects the <c>LibraryImport</c> declarations to the libraries <see cref="CudaLibraryLocator"/> finds: the
/// bindings name logical libraries, and the assembly's import resolver maps each to the loaded handle.
/// </summary>
internal static class CudaLibraries
{
    public const string DriverName = "kvfusion-cuda-driver";
    public const string NvrtcName = "kvfusion-nvrtc";
    public const string CublasName = "kvfusion-cublas";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<CudaLibraryKind, LoadedCudaLibrary> Loaded = [];
    private static bool _resolverSet;

    /// <summary>Loads a library now (so that a missing one fails with the locator's message, not at a P/Invoke).</summary>
    public static LoadedCudaLibrary Require(CudaLibraryKind kind)
    {
        lock (Gate)
        {
            EnsureResolver();
            if (!Loaded.TryGetValue(kind, out var library))
            {
                library = CudaLibraryLocator.FromEnvironment().Load(kind);
                Loaded[kind] = library;
            }

            return library;
        }
    }

    /// <summary>Whether a library has been loaded.</summary>
    public static bool IsLoaded(CudaLibraryKind kind)
    {
        lock (Gate)
        {
            return Loaded.ContainsKey(kind);
        }
    }

    /// <summary>Installs the assembly's import resolver (once).</summary>
    public static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_resolverSet)
            {
                return;
            }

            NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var kind = libraryName switch
        {
            DriverName => CudaLibraryKind.Driver,
            NvrtcName => CudaLibraryKind.Nvrtc,
            CublasName => CudaLibraryKind.Cublas,
            _ => (CudaLibraryKind?)null,
        };
        if (kind is null)
        {
            return 0;
        }

        // Callers load explicitly first (Require), so this path only serves calls made after a successful load; a
        // failure here falls back to the runtime's own DllNotFoundException.
        try
        {
            return Require(kind.Value).Handle;
        }
        catch (CudaLibraryNotFoundException)
        {
            return 0;
        }
    }
}
