using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>The NVRTC calls the kernel compiler makes.</summary>
internal static unsafe partial class Nvrtc
{
    static Nvrtc() => CudaLibraries.EnsureResolver();

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="status"/> is not success.</summary>
    public static void Check(int status, string call, string? detail = null)
    {
        if (status != 0)
        {
            throw new CudaException(call, status, CudaStatus.NvrtcName(status), detail);
        }
    }

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcVersion(out int major, out int minor);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcCreateProgram(out nint program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcGetProgramLogSize(nint program, out nuint size);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcGetProgramLog(nint program, byte* log);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcGetCUBINSize(nint program, out nuint size);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcGetCUBIN(nint program, byte* cubin);

    [LibraryImport(CudaLibraries.NvrtcName)]
    public static partial int nvrtcDestroyProgram(ref nint program);
}
