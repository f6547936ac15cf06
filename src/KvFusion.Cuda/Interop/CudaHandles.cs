using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>A retained primary context of one device; released on dispose.</summary>
internal sealed class CudaContextHandle : SafeHandle
{
    public CudaContextHandle(nint context, int device)
        : base(0, ownsHandle: true)
    {
        SetHandle(context);
        Device = device;
    }

    public int Device { get; }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease(Device) == 0;
}

/// <summary>A CUDA stream.</summary>
internal sealed class CudaStreamHandle : SafeHandle
{
    public CudaStreamHandle()
        : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public static CudaStreamHandle Create(uint flags)
    {
        CudaDriver.Check(CudaDriver.cuStreamCreate(out var stream, flags), nameof(CudaDriver.cuStreamCreate));
        var h = new CudaStreamHandle();
        h.SetHandle(stream);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuStreamDestroy(handle) == 0;
}

/// <summary>A CUDA event.</summary>
internal sealed class CudaEventHandle : SafeHandle
{
    public CudaEventHandle()
        : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public static CudaEventHandle Create(uint flags)
    {
        CudaDriver.Check(CudaDriver.cuEventCreate(out var e, flags), nameof(CudaDriver.cuEventCreate));
        var h = new CudaEventHandle();
        h.SetHandle(e);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuEventDestroy(handle) == 0;
}

/// <summary>A loaded module (cubin).</summary>
internal sealed unsafe class CudaModuleHandle : SafeHandle
{
    public CudaModuleHandle()
        : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public static CudaModuleHandle Load(ReadOnlySpan<byte> image)
    {
        nint module;
        fixed (byte* p = image)
        {
            CudaDriver.Check(CudaDriver.cuModuleLoadData(out module, p), nameof(CudaDriver.cuModuleLoadData));
        }

        var h = new CudaModuleHandle();
        h.SetHandle(module);
        return h;
    }

    /// <summary>Looks up a kernel by its extern "C" name.</summary>
    public nint GetFunction(string name)
    {
        var status = CudaDriver.cuModuleGetFunction(out var function, handle, name);
        if (status != 0)
        {
            throw new CudaException($"cuModuleGetFunction({name})", status, CudaStatus.DriverName(status));
        }

        return function;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuModuleUnload(handle) == 0;
}

/// <summary>Device memory from <c>cuMemAlloc</c>.</summary>
internal sealed class CudaDeviceMemory : SafeHandle
{
    private CudaDeviceMemory(long bytes)
        : base(0, ownsHandle: true)
    {
        Bytes = bytes;
    }

    public long Bytes { get; }

    public ulong Pointer => (ulong)handle;

    public override bool IsInvalid => handle == 0;

    public static CudaDeviceMemory Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var status = CudaDriver.cuMemAlloc(out var pointer, (nuint)Math.Max(bytes, 256));
        if (status != 0)
        {
            var e = CudaDriver.Error(status, nameof(CudaDriver.cuMemAlloc));
            throw new CudaException($"Allocating {bytes:N0} bytes of device memory failed: {e.Message}", e);
        }

        var h = new CudaDeviceMemory(bytes);
        h.SetHandle((nint)pointer);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuMemFree((ulong)handle) == 0;
}

/// <summary>Page-locked host memory from <c>cuMemAllocHost</c> (fast, asynchronous transfers).</summary>
internal sealed unsafe class PinnedHostBuffer : SafeHandle
{
    private PinnedHostBuffer(long bytes)
        : base(0, ownsHandle: true)
    {
        Bytes = bytes;
    }

    public long Bytes { get; }

    public byte* Pointer => (byte*)handle;

    public override bool IsInvalid => handle == 0;

    public static PinnedHostBuffer Allocate(long bytes)
    {
        CudaDriver.Check(CudaDriver.cuMemAllocHost(out var p, (nuint)bytes), nameof(CudaDriver.cuMemAllocHost));
        var h = new PinnedHostBuffer(bytes);
        h.SetHandle(p);
        return h;
    }

    protected override bool ReleaseHandle() => CudaDriver.cuMemFreeHost(handle) == 0;
}

/// <summary>A cuBLAS handle.</summary>
internal sealed class CublasHandle : SafeHandle
{
    public CublasHandle()
        : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public static CublasHandle Create()
    {
        CuBlas.Check(CuBlas.cublasCreate(out var h), nameof(CuBlas.cublasCreate));
        var handle = new CublasHandle();
        handle.SetHandle(h);
        return handle;
    }

    protected override bool ReleaseHandle() => CuBlas.cublasDestroy(handle) == 0;
}

/// <summary>An NVRTC program.</summary>
internal sealed class NvrtcProgramHandle : SafeHandle
{
    public NvrtcProgramHandle(nint program)
        : base(0, ownsHandle: true) => SetHandle(program);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        var p = handle;
        return Nvrtc.nvrtcDestroyProgram(ref p) == 0;
    }
}
