using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Tests.Interop;

/// <summary>Failed calls become exceptions that name the call, the status and its code; success raises nothing.</summary>
public sealed class CudaExceptionTests
{
    [Fact]
    public void The_message_names_the_call_the_status_name_and_the_code()
    {
        var e = new CudaException("cuMemAlloc_v2", 2, CudaStatus.DriverName(2));

        Assert.Equal("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2).", e.Message);
        Assert.Equal("cuMemAlloc_v2", e.Call);
        Assert.Equal(2, e.Status);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", e.StatusName);
    }

    [Fact]
    public void A_detail_is_appended_to_the_message()
    {
        var e = new CudaException("cuInit", 100, CudaStatus.DriverName(100), "no CUDA-capable device is detected");

        Assert.Equal("cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected", e.Message);
    }

    [Fact]
    public void An_empty_detail_is_left_out()
    {
        var e = new CudaException("cuInit", 3, CudaStatus.DriverName(3), string.Empty);

        Assert.Equal("cuInit failed: CUDA_ERROR_NOT_INITIALIZED (3).", e.Message);
    }

    [Fact]
    public void A_message_only_exception_has_no_call_or_status()
    {
        var inner = new InvalidOperationException("inner");
        var e = new CudaException("Kernel module 'x' is not embedded.", inner);

        Assert.Equal("Kernel module 'x' is not embedded.", e.Message);
        Assert.Same(inner, e.InnerException);
        Assert.Equal(string.Empty, e.Call);
        Assert.Equal(0, e.Status);
        Assert.Equal(string.Empty, e.StatusName);
    }

    [Fact]
    public void Nvrtc_check_throws_naming_the_call_status_and_log_for_a_failure()
    {
        var e = Assert.Throws<CudaException>(() => Nvrtc.Check(6, "nvrtcCompileProgram(x.cu, sm_90)", "x.cu(3): error: expected a \";\""));

        Assert.Equal("nvrtcCompileProgram(x.cu, sm_90)", e.Call);
        Assert.Equal(6, e.Status);
        Assert.Equal("NVRTC_ERROR_COMPILATION", e.StatusName);
        Assert.StartsWith("nvrtcCompileProgram(x.cu, sm_90) failed: NVRTC_ERROR_COMPILATION (6)", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("x.cu(3): error: expected a \";\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nvrtc_check_does_nothing_for_success()
    {
        Nvrtc.Check(0, "nvrtcVersion");
        Nvrtc.Check(0, "nvrtcCompileProgram", "warnings only");
    }

    [Fact]
    public void Cublas_check_throws_naming_the_call_and_status_for_a_failure()
    {
        var e = Assert.Throws<CudaException>(() => CuBlas.Check(13, "cublasGemmEx"));

        Assert.Equal("cublasGemmEx", e.Call);
        Assert.Equal(13, e.Status);
        Assert.Equal("cublasGemmEx failed: CUBLAS_STATUS_EXECUTION_FAILED (13).", e.Message);
    }

    [Fact]
    public void Cublas_check_does_nothing_for_success()
    {
        CuBlas.Check(0, "cublasCreate_v2");
    }

    [Fact]
    public void Driver_check_throws_naming_the_call_status_and_code_for_a_failure()
    {
        // When libcuda is loaded (another test may have loaded it) the driver's description is appended.
        var e = Assert.Throws<CudaException>(() => CudaDriver.Check(2, "cuMemAlloc_v2"));

        Assert.Equal("cuMemAlloc_v2", e.Call);
        Assert.Equal(2, e.Status);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", e.StatusName);
        Assert.StartsWith("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Driver_check_does_nothing_for_success()
    {
        CudaDriver.Check(0, "cuInit");
    }

    [Fact]
    public void Library_not_found_keeps_its_message_and_cause()
    {
        var inner = new DllNotFoundException("libnvrtc.so.12: cannot open shared object file");
        var e = new CudaLibraryNotFoundException("Could not load NVRTC", inner);

        Assert.Equal("Could not load NVRTC", e.Message);
        Assert.Same(inner, e.InnerException);
        Assert.Equal("No CUDA library was found.", new CudaLibraryNotFoundException().Message);
    }
}
