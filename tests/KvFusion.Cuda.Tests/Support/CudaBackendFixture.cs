using KvFusion.Cuda.Backend;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>One backend on device 0 for the GPU tests of a class, created on first use (never without a device).</summary>
public sealed class CudaBackendFixture : IDisposable
{
    private readonly Lazy<CudaBackend> _backend = new(() =>
        CudaBackend.Create(new CudaBackendOptions { CubinCacheDirectory = CudaTestEnvironment.CubinCacheDirectory }));

    public CudaBackend Backend => _backend.Value;

    /// <summary>The backend, or a skip with the reason there is none (for the tests of a GPU-only class).</summary>
    public CudaBackend BackendOrSkip
    {
        get
        {
            Skip.If(CudaTestEnvironment.SkipReason is not null, CudaTestEnvironment.SkipReason);
            return Backend;
        }
    }

    public void Dispose()
    {
        if (_backend.IsValueCreated)
        {
            _backend.Value.Dispose();
        }
    }
}
