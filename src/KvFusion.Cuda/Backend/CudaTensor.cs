using KvFusion.Cuda.Interop;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Cuda.Backend;

/// <summary>A row-major matrix in device memory.</summary>
internal sealed class CudaTensor : DeviceTensor
{
    private readonly CudaDeviceMemory _memory;

    public CudaTensor(TensorDType dtype, int rows, int cols, CudaDeviceMemory memory, CudaBackend owner)
        : base(dtype, rows, cols)
    {
        _memory = memory;
        Owner = owner;
    }

    public CudaBackend Owner { get; }

    public ulong Pointer => _memory.Pointer;

    public ulong RowPointer(long row) => _memory.Pointer + (ulong)(row * Cols * DType.SizeInBytes());

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Owner.Release(_memory);
        }
    }
}
