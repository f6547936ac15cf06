using System.Runtime.InteropServices;

namespace KvFusion.Cuda.Interop;

/// <summary>The cuBLAS calls the backend makes (GEMMs through <c>cublasGemmEx</c>).</summary>
internal static unsafe partial class CuBlas
{
    public const int OperationN = 0;
    public const int OperationT = 1;
    public const int DataTypeF32 = 0;
    public const int DataTypeF16 = 2;
    public const int DataTypeBF16 = 14;
    public const int ComputeF32 = 68;
    public const int GemmDefault = -1;

    static CuBlas() => CudaLibraries.EnsureResolver();

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="status"/> is not success.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw new CudaException(call, status, CudaStatus.CublasName(status));
        }
    }

    [LibraryImport(CudaLibraries.CublasName, EntryPoint = "cublasCreate_v2")]
    public static partial int cublasCreate(out nint handle);

    [LibraryImport(CudaLibraries.CublasName, EntryPoint = "cublasDestroy_v2")]
    public static partial int cublasDestroy(nint handle);

    [LibraryImport(CudaLibraries.CublasName, EntryPoint = "cublasSetStream_v2")]
    public static partial int cublasSetStream(nint handle, nint stream);

    [LibraryImport(CudaLibraries.CublasName, EntryPoint = "cublasGetVersion_v2")]
    public static partial int cublasGetVersion(nint handle, out int version);

    [LibraryImport(CudaLibraries.CublasName)]
    public static partial int cublasGemmEx(
        nint handle, int transa, int transb, int m, int n, int k, void* alpha,
        ulong a, int aType, int lda, ulong b, int bType, int ldb, void* beta,
        ulong c, int cType, int ldc, int computeType, int algo);
}
