using System.Diagnostics;
using KvFusion.Cuda.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cuda.Kernels;

/// <summary>
/// The kernel modules loaded into the current context: compiled for the device's architecture (or taken from the
/// cubin cache) and resolved to function handles once.
/// </summary>
internal sealed partial class KernelModules : IDisposable
{
    private readonly Dictionary<string, CudaModuleHandle> _modules = [];
    private readonly Dictionary<string, nint> _functions = [];
    private readonly Dictionary<nint, int> _dynamicSharedLimits = [];
    private readonly ILogger _logger;

    public KernelModules(string architecture, CubinCache cache, IKernelCompiler compiler, ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
        foreach (var source in KernelSources.All)
        {
            var watch = Stopwatch.StartNew();
            var cubin = cache.GetOrCompile(source, architecture, compiler, out var fromCache);
            _modules[source.Name] = CudaModuleHandle.Load(cubin);
            LogModule(source.Name, architecture, fromCache ? "cubin cache" : $"NVRTC {compiler.Version}", watch.Elapsed.TotalMilliseconds);
        }

        foreach (var (module, names) in KernelNames.ByModule)
        {
            if (!_modules.TryGetValue(module, out var handle))
            {
                throw new CudaException($"Kernel module '{module}' is not embedded.");
            }

            foreach (var name in names)
            {
                _functions[name] = handle.GetFunction(name);
            }
        }
    }

    /// <summary>The handle of a kernel.</summary>
    public nint this[string name] => _functions.TryGetValue(name, out var f)
        ? f
        : throw new KeyNotFoundException($"Kernel '{name}' is not loaded.");

    /// <summary>Lets a kernel use <paramref name="bytes"/> of dynamic shared memory (needed above 48 KiB).</summary>
    public void EnsureDynamicShared(nint function, int bytes)
    {
        if (bytes <= 48 * 1024 || (_dynamicSharedLimits.TryGetValue(function, out var limit) && limit >= bytes))
        {
            return;
        }

        CudaDriver.Check(
            CudaDriver.cuFuncSetAttribute(function, CudaDriver.FunctionAttributeMaxDynamicSharedSizeBytes, bytes),
            "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
        _dynamicSharedLimits[function] = bytes;
    }

    public void Dispose()
    {
        foreach (var m in _modules.Values)
        {
            m.Dispose();
        }

        _modules.Clear();
        _functions.Clear();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Loaded kernel module {Module} for {Architecture} from {Origin} in {Milliseconds:F1} ms")]
    private partial void LogModule(string module, string architecture, string origin, double milliseconds);
}
