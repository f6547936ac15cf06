using System.Collections.Concurrent;
using KvFusion.Cuda.Interop;
using KvFusion.Cuda.Kernels;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>
/// Whether NVRTC can be loaded here, and the embedded modules compiled by it, once per module and architecture for
/// the whole test run (compiling the attention module takes seconds).
/// </summary>
internal static class NvrtcTestEnvironment
{
    private static readonly Lazy<string?> Reason = new(() =>
        CudaLibraryLocator.FromEnvironment().TryLoad(CudaLibraryKind.Nvrtc, out _, out var why) ? null : "NVRTC not found: " + why);

    private static readonly Lazy<NvrtcCompiler> SharedCompiler = new(NvrtcCompiler.Create);

    private static readonly ConcurrentDictionary<(string Module, string Architecture), Lazy<byte[]>> Cubins = new();

    /// <summary>Null when NVRTC loads; otherwise why it does not (starts with "NVRTC not found").</summary>
    public static string? SkipReason => Reason.Value;

    /// <summary>One compiler for the run.</summary>
    public static NvrtcCompiler Compiler => SharedCompiler.Value;

    /// <summary>The cubin of an embedded module for an architecture, compiled on first request.</summary>
    public static byte[] Cubin(string module, string architecture) =>
        Cubins.GetOrAdd(
            (module, architecture),
            key => new Lazy<byte[]>(() => Compiler.Compile(KernelSources.Get(key.Module), key.Architecture))).Value;
}
