namespace KvFusion.Cuda.Interop;

/// <summary>A CUDA driver, NVRTC or cuBLAS call returned an error status.</summary>
public sealed class CudaException : Exception
{
    /// <summary>Creates the exception for a failed call.</summary>
    public CudaException(string call, int status, string statusName, string? detail = null)
        : base(FormatMessage(call, status, statusName, detail))
    {
        Call = call;
        Status = status;
        StatusName = statusName;
    }

    /// <summary>Creates an exception with a message only (an error found outside a status code).</summary>
    public CudaException(string message)
        : base(message)
    {
        Call = string.Empty;
        StatusName = string.Empty;
    }

    /// <summary>Creates an exception with a message and the error behind it.</summary>
    public CudaException(string message, Exception innerException)
        : base(message, innerException)
    {
        Call = string.Empty;
        StatusName = string.Empty;
    }

    /// <summary>Creates an empty exception.</summary>
    public CudaException()
        : this("A CUDA call failed.")
    {
    }

    /// <summary>The API function that failed (e.g. <c>cuMemAlloc_v2</c>).</summary>
    public string Call { get; }

    /// <summary>The status code it returned.</summary>
    public int Status { get; }

    /// <summary>The symbolic name of the status (e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>).</summary>
    public string StatusName { get; }

    private static string FormatMessage(string call, int status, string statusName, string? detail) =>
        string.IsNullOrEmpty(detail)
            ? $"{call} failed: {statusName} ({status})."
            : $"{call} failed: {statusName} ({status}): {detail}";
}

/// <summary>No usable CUDA library (driver, NVRTC or cuBLAS) was found or one failed to load.</summary>
public sealed class CudaLibraryNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CudaLibraryNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the load error behind it.</summary>
    public CudaLibraryNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an empty exception.</summary>
    public CudaLibraryNotFoundException()
        : this("No CUDA library was found.")
    {
    }
}
