using KvFusion.Cuda.Backend;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>Finding a device: machines without one get a reason instead of an exception.</summary>
public sealed class CudaDevicesTests
{
    private const string Prefix = "no CUDA device";

    [Fact]
    public void Describing_device_0_either_succeeds_or_says_why_there_is_no_device()
    {
        var found = CudaDevices.TryDescribe(0, out var info, out var reason);

        if (found)
        {
            Assert.NotNull(info);
            Assert.False(string.IsNullOrWhiteSpace(info.Name));
            Assert.Equal(0, info.Ordinal);
            Assert.True(info.TotalMemoryBytes > 0);
            Assert.Equal(string.Empty, reason);
        }
        else
        {
            Assert.Null(info);
            Assert.StartsWith(Prefix, reason, StringComparison.Ordinal);
            Assert.True(reason.Length > Prefix.Length + 2, $"'{reason}' does not say why");
        }
    }

    [Fact]
    public void A_device_ordinal_beyond_the_installed_devices_is_reported_as_no_device()
    {
        var found = CudaDevices.TryDescribe(10_000, out var info, out var reason);

        Assert.False(found);
        Assert.Null(info);
        Assert.StartsWith(Prefix, reason, StringComparison.Ordinal);
        Assert.True(reason.Length > Prefix.Length + 2, $"'{reason}' does not say why");
    }

    [Fact]
    public void The_shared_skip_reason_agrees_with_the_device_lookup()
    {
        var reason = CudaTestEnvironment.SkipReason;

        if (reason is null)
        {
            Assert.NotNull(CudaTestEnvironment.Device);
        }
        else
        {
            Assert.Null(CudaTestEnvironment.Device);
            Assert.StartsWith(Prefix, reason, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public void Describe_reads_the_facts_of_the_installed_device()
    {
        Skip.If(CudaTestEnvironment.SkipReason is not null, CudaTestEnvironment.SkipReason);

        var info = CudaDevices.Describe(0);

        Assert.Matches("^sm_[0-9]+$", info.Architecture);
        Assert.True(info.ComputeMajor >= 5);
        Assert.True(info.Multiprocessors > 0);
        Assert.True(info.DriverVersion >= 11000);
        Assert.True(info.MaxSharedMemoryPerBlockOptin >= 48 * 1024);
    }
}
