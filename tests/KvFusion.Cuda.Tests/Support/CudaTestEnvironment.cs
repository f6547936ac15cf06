using KvFusion.Cuda.Backend;

namespace KvFusion.Cuda.Tests.Support;

/// <summary>Whether a CUDA device is usable here (asked once per run); GPU tests skip with the reason when not.</summary>
internal static class CudaTestEnvironment
{
    private static readonly Lazy<(CudaDeviceInfo? Device, string? Reason)> State = new(() =>
        CudaDevices.TryDescribe(0, out var info, out var reason) ? (info, null) : (null, reason));

    /// <summary>Null when device 0 can be used; otherwise why not (starts with "no CUDA device").</summary>
    public static string? SkipReason => State.Value.Reason;

    /// <summary>Device 0, when there is one.</summary>
    public static CudaDeviceInfo? Device => State.Value.Device;

    /// <summary>A cubin cache folder kept between runs, so GPU test runs after the first skip the NVRTC compiles.</summary>
    public static string CubinCacheDirectory => Path.Combine(Path.GetTempPath(), "kvfusion-cuda-tests-cubin");
}
