using KvFusion.Cuda.Backend;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>The facts of a device as the backend reports them.</summary>
public sealed class CudaDeviceInfoTests
{
    private static CudaDeviceInfo Info(int major, int minor, int driverVersion) =>
        new(0, "NVIDIA H100 80GB HBM3", major, minor, 132, 80L << 30, 227 * 1024, 3.35e12, driverVersion);

    [Theory]
    [InlineData(8, 0, "sm_80")]
    [InlineData(8, 6, "sm_86")]
    [InlineData(9, 0, "sm_90")]
    [InlineData(12, 0, "sm_120")]
    public void The_architecture_is_the_NVRTC_sm_name(int major, int minor, string expected)
    {
        Assert.Equal(expected, Info(major, minor, 12040).Architecture);
    }

    [Theory]
    [InlineData(12040, "driver 12.4")]
    [InlineData(13000, "driver 13.0")]
    [InlineData(11080, "driver 11.8")]
    public void The_description_names_the_device_architecture_memory_and_driver(int driverVersion, string driver)
    {
        var text = Info(9, 0, driverVersion).ToString();

        Assert.StartsWith("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 80 GiB, ", text, StringComparison.Ordinal);
        Assert.EndsWith(driver + ")", text, StringComparison.Ordinal);
    }
}
