using System.Runtime.InteropServices;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>A tensor in host memory: owned (64-byte aligned native memory) or a view (e.g. of a memory-mapped weight).</summary>
internal sealed unsafe class CpuTensor : DeviceTensor
{
    private readonly bool _owned;
    private void* _data;

    private CpuTensor(TensorDType dtype, int rows, int cols, void* data, bool owned)
        : base(dtype, rows, cols)
    {
        _data = data;
        _owned = owned;
    }

    public void* Data => _data != null || ElementCount == 0 ? _data : throw new ObjectDisposedException(nameof(CpuTensor));

    public float* F32 => (float*)Data;

    public int* I32 => (int*)Data;

    public static CpuTensor Allocate(TensorDType dtype, int rows, int cols)
    {
        var bytes = (nuint)((long)rows * cols * dtype.SizeInBytes());
        var p = NativeMemory.AlignedAlloc(Math.Max(bytes, 64), 64);
        NativeMemory.Clear(p, Math.Max(bytes, 64));
        return new CpuTensor(dtype, rows, cols, p, owned: true);
    }

    public static CpuTensor View(TensorDType dtype, int rows, int cols, void* data) => new(dtype, rows, cols, data, owned: false);

    protected override void Dispose(bool disposing)
    {
        if (_owned && _data != null)
        {
            NativeMemory.AlignedFree(_data);
        }

        _data = null;
    }
}
