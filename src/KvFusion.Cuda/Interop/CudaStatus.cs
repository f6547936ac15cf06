namespace KvFusion.Cuda.Interop;

/// <summary>
/// Names of the status codes the three libraries return, kept here so that an error names its status even when the
/// library that would describe it failed to load.
/// </summary>
internal static class CudaStatus
{
    private static readonly Dictionary<int, string> DriverNames = new()
    {
        [0] = "CUDA_SUCCESS", [1] = "CUDA_ERROR_INVALID_VALUE", [2] = "CUDA_ERROR_OUT_OF_MEMORY",
        [3] = "CUDA_ERROR_NOT_INITIALIZED", [4] = "CUDA_ERROR_DEINITIALIZED", [34] = "CUDA_ERROR_STUB_LIBRARY",
        [46] = "CUDA_ERROR_DEVICE_UNAVAILABLE", [100] = "CUDA_ERROR_NO_DEVICE", [101] = "CUDA_ERROR_INVALID_DEVICE",
        [102] = "CUDA_ERROR_DEVICE_NOT_LICENSED", [200] = "CUDA_ERROR_INVALID_IMAGE", [201] = "CUDA_ERROR_INVALID_CONTEXT",
        [209] = "CUDA_ERROR_NO_BINARY_FOR_GPU", [218] = "CUDA_ERROR_INVALID_PTX", [222] = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        [300] = "CUDA_ERROR_INVALID_SOURCE", [301] = "CUDA_ERROR_FILE_NOT_FOUND", [400] = "CUDA_ERROR_INVALID_HANDLE",
        [500] = "CUDA_ERROR_NOT_FOUND", [600] = "CUDA_ERROR_NOT_READY", [700] = "CUDA_ERROR_ILLEGAL_ADDRESS",
        [701] = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", [702] = "CUDA_ERROR_LAUNCH_TIMEOUT", [716] = "CUDA_ERROR_MISALIGNED_ADDRESS",
        [719] = "CUDA_ERROR_LAUNCH_FAILED", [803] = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        [804] = "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", [999] = "CUDA_ERROR_UNKNOWN",
    };

    private static readonly Dictionary<int, string> NvrtcNames = new()
    {
        [0] = "NVRTC_SUCCESS", [1] = "NVRTC_ERROR_OUT_OF_MEMORY", [2] = "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
        [3] = "NVRTC_ERROR_INVALID_INPUT", [4] = "NVRTC_ERROR_INVALID_PROGRAM", [5] = "NVRTC_ERROR_INVALID_OPTION",
        [6] = "NVRTC_ERROR_COMPILATION", [7] = "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
        [8] = "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION", [9] = "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION",
        [10] = "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID", [11] = "NVRTC_ERROR_INTERNAL_ERROR",
        [12] = "NVRTC_ERROR_TIME_FILE_WRITE_FAILED",
    };

    private static readonly Dictionary<int, string> CublasNames = new()
    {
        [0] = "CUBLAS_STATUS_SUCCESS", [1] = "CUBLAS_STATUS_NOT_INITIALIZED", [3] = "CUBLAS_STATUS_ALLOC_FAILED",
        [7] = "CUBLAS_STATUS_INVALID_VALUE", [8] = "CUBLAS_STATUS_ARCH_MISMATCH", [11] = "CUBLAS_STATUS_MAPPING_ERROR",
        [13] = "CUBLAS_STATUS_EXECUTION_FAILED", [14] = "CUBLAS_STATUS_INTERNAL_ERROR", [15] = "CUBLAS_STATUS_NOT_SUPPORTED",
        [16] = "CUBLAS_STATUS_LICENSE_ERROR",
    };

    /// <summary>The CUresult name of a driver status.</summary>
    public static string DriverName(int status) => Name(DriverNames, status, "CUDA_ERROR");

    /// <summary>The nvrtcResult name of an NVRTC status.</summary>
    public static string NvrtcName(int status) => Name(NvrtcNames, status, "NVRTC_ERROR");

    /// <summary>The cublasStatus_t name of a cuBLAS status.</summary>
    public static string CublasName(int status) => Name(CublasNames, status, "CUBLAS_STATUS");

    private static string Name(Dictionary<int, string> names, int status, string prefix) =>
        names.TryGetValue(status, out var name) ? name : $"{prefix}_{status}";
}
