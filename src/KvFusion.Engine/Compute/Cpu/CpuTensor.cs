using System.Runtime.InteropServices;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// A tensor in host memory: owned (64-byte aligned native memory) or a view (e.g. of a memory-mapped weight). Owned
/// memory belongs to an <see cref="AlignedMemoryHandle"/>, so a tensor that is never disposed is still freed by
/// the handle's finalizer; the kernels use the address captured at allocation, not the handle.
/// </summary>
internal sealed unsafe class CpuTensor : DeviceTensor
{
    private readonly AlignedMemoryHandle? _memory;
    private void* _data;

    private CpuTensor(TensorDType dtype, int rows, int cols, void* data, AlignedMemoryHandle? memory)
        : base(dtype, rows, cols)
    {
        _data = data;
        _memory = memory;
    }

    /// <summary>Bytes of native memory held by owned CPU tensors not yet freed, over the process.</summary>
    internal static long LiveNativeBytes => AlignedMemoryHandle.LiveBytes;

    public void* Data => _data != null || ElementCount == 0 ? _data : throw new ObjectDisposedException(nameof(CpuTensor));

    public float* F32 => (float*)Data;

    public int* I32 => (int*)Data;

    public static CpuTensor Allocate(TensorDType dtype, int rows, int cols)
    {
        var bytes = (nuint)Math.Max((long)rows * cols * dtype.SizeInBytes(), 64);
        var memory = AlignedMemoryHandle.Allocate(bytes);
        var p = (void*)memory.DangerousGetHandle();
        NativeMemory.Clear(p, bytes);
        return new CpuTensor(dtype, rows, cols, p, memory);
    }

    public static CpuTensor View(TensorDType dtype, int rows, int cols, void* data) => new(dtype, rows, cols, data, memory: null);

    protected override void Dispose(bool disposing)
    {
        _data = null;
        _memory?.Dispose();
    }

    /// <summary>64-byte aligned native memory, freed by Dispose or, if that is forgotten, by the finalizer.</summary>
    private sealed class AlignedMemoryHandle : SafeHandle
    {
        private static long s_liveBytes;
        private readonly nuint _bytes;

        private AlignedMemoryHandle(nuint bytes)
            : base(IntPtr.Zero, ownsHandle: true)
        {
            _bytes = bytes;
        }

        public static long LiveBytes => Interlocked.Read(ref s_liveBytes);

        public override bool IsInvalid => handle == IntPtr.Zero;

        public static AlignedMemoryHandle Allocate(nuint bytes)
        {
            // The handle exists before the allocation, so no failure between the two can leak the memory.
            var h = new AlignedMemoryHandle(bytes);
            h.SetHandle((nint)NativeMemory.AlignedAlloc(bytes, 64));
            Interlocked.Add(ref s_liveBytes, (long)bytes);
            return h;
        }

        protected override bool ReleaseHandle()
        {
            NativeMemory.AlignedFree((void*)handle);
            Interlocked.Add(ref s_liveBytes, -(long)_bytes);
            return true;
        }
    }
}
