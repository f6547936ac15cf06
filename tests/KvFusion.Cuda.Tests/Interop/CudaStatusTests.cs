using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Tests.Interop;

/// <summary>Status codes of the driver, NVRTC and cuBLAS are named without asking the (possibly missing) library.</summary>
public sealed class CudaStatusTests
{
    [Theory]
    [InlineData(0, "CUDA_SUCCESS")]
    [InlineData(2, "CUDA_ERROR_OUT_OF_MEMORY")]
    [InlineData(34, "CUDA_ERROR_STUB_LIBRARY")]
    [InlineData(100, "CUDA_ERROR_NO_DEVICE")]
    [InlineData(209, "CUDA_ERROR_NO_BINARY_FOR_GPU")]
    [InlineData(719, "CUDA_ERROR_LAUNCH_FAILED")]
    [InlineData(999, "CUDA_ERROR_UNKNOWN")]
    public void Known_driver_statuses_have_their_CUresult_names(int status, string name)
    {
        Assert.Equal(name, CudaStatus.DriverName(status));
    }

    [Theory]
    [InlineData(0, "NVRTC_SUCCESS")]
    [InlineData(5, "NVRTC_ERROR_INVALID_OPTION")]
    [InlineData(6, "NVRTC_ERROR_COMPILATION")]
    [InlineData(7, "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE")]
    [InlineData(11, "NVRTC_ERROR_INTERNAL_ERROR")]
    public void Known_nvrtc_statuses_have_their_nvrtcResult_names(int status, string name)
    {
        Assert.Equal(name, CudaStatus.NvrtcName(status));
    }

    [Theory]
    [InlineData(0, "CUBLAS_STATUS_SUCCESS")]
    [InlineData(1, "CUBLAS_STATUS_NOT_INITIALIZED")]
    [InlineData(7, "CUBLAS_STATUS_INVALID_VALUE")]
    [InlineData(13, "CUBLAS_STATUS_EXECUTION_FAILED")]
    [InlineData(15, "CUBLAS_STATUS_NOT_SUPPORTED")]
    public void Known_cublas_statuses_have_their_cublasStatus_names(int status, string name)
    {
        Assert.Equal(name, CudaStatus.CublasName(status));
    }

    [Fact]
    public void Unknown_statuses_are_named_by_prefix_and_code()
    {
        Assert.Equal("CUDA_ERROR_12345", CudaStatus.DriverName(12345));
        Assert.Equal("CUDA_ERROR_-1", CudaStatus.DriverName(-1));
        Assert.Equal("NVRTC_ERROR_99", CudaStatus.NvrtcName(99));
        Assert.Equal("CUBLAS_STATUS_2", CudaStatus.CublasName(2));
    }
}
