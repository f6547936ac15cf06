using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>
/// The subset of the CUDA driver API the backend calls. Entry points are the ABI-stable exported names (the
/// <c>_v2</c> variants where the header maps to them), so one binding serves drivers for CUDA 11 through 13.
/// </summary>
internal static unsafe partial class CudaDriver
{
    public const int DeviceAttributeMaxThreadsPerBlock = 1;
    public const int DeviceAttributeMultiprocessorCount = 16;
    public const int DeviceAttributeClockRate = 13;
    public const int DeviceAttributeMemoryClockRate = 36;
    public const int DeviceAttributeGlobalMemoryBusWidth = 37;
    public const int DeviceAttributeComputeCapabilityMajor = 75;
    public const int DeviceAttributeComputeCapabilityMinor = 76;
    public const int DeviceAttributeMaxSharedMemoryPerBlockOptin = 97;
    public const int FunctionAttributeMaxDynamicSharedSizeBytes = 8;
    public const uint StreamNonBlocking = 1;
    public const uint EventDisableTiming = 2;

    static CudaDriver() => CudaLibraries.EnsureResolver();

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="status"/> is not success.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw Error(status, call);
        }
    }

    /// <summary>The exception for a failed driver call, with the driver's description when it can give one.</summary>
    public static CudaException Error(int status, string call)
    {
        string? detail = null;
        if (CudaLibraries.IsLoaded(CudaLibraryKind.Driver) && cuGetErrorString(status, out var text) == 0 && text != 0)
        {
            detail = Marshal.PtrToStringUTF8(text);
        }

        return new CudaException(call, status, CudaStatus.DriverName(status), detail);
    }

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuInit(uint flags);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDriverGetVersion(out int version);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuGetErrorString(int status, out nint text);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDeviceGetCount(out int count);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDeviceGet(out int device, int ordinal);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuDeviceTotalMem_v2")]
    public static partial int cuDeviceTotalMem(out nuint bytes, int device);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuDevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    public static partial int cuDevicePrimaryCtxRelease(int device);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuCtxSetCurrent(nint context);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuCtxGetCurrent(out nint context);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemAlloc_v2")]
    public static partial int cuMemAlloc(out ulong pointer, nuint bytes);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemFree_v2")]
    public static partial int cuMemFree(ulong pointer);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemAllocHost_v2")]
    public static partial int cuMemAllocHost(out nint pointer, nuint bytes);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuMemFreeHost(nint pointer);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    public static partial int cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    public static partial int cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    public static partial int cuMemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuModuleLoadData(out nint module, void* image);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuModuleUnload(nint module);

    [LibraryImport(CudaLibraries.DriverName, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int cuModuleGetFunction(out nint function, nint module, string name);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuFuncSetAttribute(nint function, int attribute, int value);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuLaunchKernel(
        nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** parameters, void** extra);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuStreamCreate(out nint stream, uint flags);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuStreamDestroy_v2")]
    public static partial int cuStreamDestroy(nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuStreamSynchronize(nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuEventCreate(out nint cudaEvent, uint flags);

    [LibraryImport(CudaLibraries.DriverName, EntryPoint = "cuEventDestroy_v2")]
    public static partial int cuEventDestroy(nint cudaEvent);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuEventRecord(nint cudaEvent, nint stream);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuEventSynchronize(nint cudaEvent);

    [LibraryImport(CudaLibraries.DriverName)]
    public static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);
}
