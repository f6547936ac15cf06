using KvFusion.Cuda.Interop;
using KvFusion.Engine.Models;

namespace KvFusion.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    /// <summary>
    /// Device time of <paramref name="work"/> (which queues operations of this backend), averaged over
    /// <paramref name="iterations"/> runs after one warm-up run: CUDA events on the backend's stream, so host overhead
    /// that overlaps the device work does not count. <paramref name="work"/> runs on this thread under the backend's
    /// operation lock (it is reentrant), so other sessions' operations wait and do not count either.
    /// </summary>
    public double MeasureMilliseconds(Action work, int iterations)
    {
        using var op = Enter();

        ArgumentNullException.ThrowIfNull(work);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        MakeCurrent();
        work();
        using var start = CudaEventHandle.Create(0);
        using var end = CudaEventHandle.Create(0);
        Check(CudaDriver.cuEventRecord(start.DangerousGetHandle(), _streamRaw), nameof(CudaDriver.cuEventRecord));
        for (var i = 0; i < iterations; i++)
        {
            work();
        }

        Check(CudaDriver.cuEventRecord(end.DangerousGetHandle(), _streamRaw), nameof(CudaDriver.cuEventRecord));
        Check(CudaDriver.cuEventSynchronize(end.DangerousGetHandle()), nameof(CudaDriver.cuEventSynchronize));
        Check(CudaDriver.cuEventElapsedTime(out var ms, start.DangerousGetHandle(), end.DangerousGetHandle()), nameof(CudaDriver.cuEventElapsedTime));
        WaitAndCheckKernelErrors();
        return ms / iterations;
    }

    /// <summary>
    /// cuBLAS's own throughput on a square-ish GEMM with half inputs and output and float32 compute (the ceiling
    /// our GEMMs are held against), in TFLOP/s.
    /// </summary>
    public double MeasureCublasTflops(int m, int n, int k, TensorDType dtype, int iterations)
    {
        using var op = Enter();

        if (dtype is not (TensorDType.F16 or TensorDType.BF16))
        {
            throw new ArgumentException("The cuBLAS ceiling is measured with F16 or BF16 inputs.", nameof(dtype));
        }

        MakeCurrent();
        var type = dtype == TensorDType.F16 ? CuBlas.DataTypeF16 : CuBlas.DataTypeBF16;
        using var a = CudaDeviceMemory.Allocate((long)m * k * 2);
        using var b = CudaDeviceMemory.Allocate((long)k * n * 2);
        using var c = CudaDeviceMemory.Allocate((long)m * n * 2);

        // Small random-looking values (0x3C00-ish halves) so the tensor cores see ordinary data, not zeros.
        Check(CudaDriver.cuMemsetD32Async(a.Pointer, 0x3A003C00u, (nuint)((long)m * k / 2), _streamRaw), nameof(CudaDriver.cuMemsetD32Async));
        Check(CudaDriver.cuMemsetD32Async(b.Pointer, 0x3C003A00u, (nuint)((long)k * n / 2), _streamRaw), nameof(CudaDriver.cuMemsetD32Async));
        var ms = MeasureMilliseconds(() =>
        {
            var alpha = 1f;
            var beta = 0f;
            CuBlas.Check(
                CuBlas.cublasGemmEx(_cublas.DangerousGetHandle(), CuBlas.OperationN, CuBlas.OperationN, m, n, k, &alpha,
                    a.Pointer, type, m, b.Pointer, type, k, &beta, c.Pointer, type, m, CuBlas.ComputeF32, CuBlas.GemmDefault),
                nameof(CuBlas.cublasGemmEx));
        }, iterations);
        return 2.0 * m * n * k / (ms * 1e-3) / 1e12;
    }

    /// <summary>Device-to-device copy bandwidth (bytes read plus written per second).</summary>
    public double MeasureCopyBytesPerSecond(long bytes, int iterations)
    {
        using var op = Enter();

        MakeCurrent();
        using var src = CudaDeviceMemory.Allocate(bytes);
        using var dst = CudaDeviceMemory.Allocate(bytes);
        var ms = MeasureMilliseconds(
            () => Check(CudaDriver.cuMemcpyDtoDAsync(dst.Pointer, src.Pointer, (nuint)bytes, _streamRaw), nameof(CudaDriver.cuMemcpyDtoDAsync)),
            iterations);
        return 2.0 * bytes / (ms * 1e-3);
    }
}
