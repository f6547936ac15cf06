using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute;

/// <summary>
/// A row-major matrix owned by a compute backend (host memory for the CPU, device memory for a GPU). The engine
/// never dereferences it: every read and write goes through the backend that created it.
/// </summary>
internal abstract class DeviceTensor : IDisposable
{
    /// <summary>Creates the tensor's description.</summary>
    protected DeviceTensor(TensorDType dtype, int rows, int cols)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        DType = dtype;
        Rows = rows;
        Cols = cols;
    }

    /// <summary>Element type.</summary>
    public TensorDType DType { get; }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Number of columns (elements per row).</summary>
    public int Cols { get; }

    /// <summary>Rows × columns.</summary>
    public long ElementCount => (long)Rows * Cols;

    /// <summary>Size in bytes.</summary>
    public long ByteCount => ElementCount * DType.SizeInBytes();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the memory the tensor owns.</summary>
    protected abstract void Dispose(bool disposing);
}
