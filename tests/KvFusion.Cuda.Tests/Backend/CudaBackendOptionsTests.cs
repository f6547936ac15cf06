using KvFusion.Cuda.Backend;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>Validation of the CUDA backend's settings.</summary>
public sealed class CudaBackendOptionsTests
{
    [Fact]
    public void The_defaults_are_valid()
    {
        var options = new CudaBackendOptions();

        options.Validate();

        Assert.Equal(0, options.DeviceOrdinal);
        Assert.Null(options.CubinCacheDirectory);
        Assert.Equal(8L << 20, options.StagingBufferBytes);
    }

    [Fact]
    public void A_negative_device_ordinal_is_rejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CudaBackendOptions { DeviceOrdinal = -1 }.Validate());

        Assert.Equal(nameof(CudaBackendOptions.DeviceOrdinal), e.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(64 * 1024 - 1)]
    [InlineData((1L << 30) + 1)]
    [InlineData(long.MaxValue)]
    public void A_staging_buffer_outside_64_KiB_to_1_GiB_is_rejected(long bytes)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CudaBackendOptions { StagingBufferBytes = bytes }.Validate());

        Assert.Equal(nameof(CudaBackendOptions.StagingBufferBytes), e.ParamName);
    }

    [Theory]
    [InlineData(64 * 1024)]
    [InlineData(1L << 30)]
    public void The_staging_buffer_limits_are_inclusive(long bytes)
    {
        new CudaBackendOptions { StagingBufferBytes = bytes }.Validate();

        Assert.Equal(64 * 1024, CudaBackendOptions.MinStagingBufferBytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\t\n")]
    public void A_blank_cubin_cache_folder_is_rejected(string folder)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CudaBackendOptions { CubinCacheDirectory = folder }.Validate());

        Assert.Equal(nameof(CudaBackendOptions.CubinCacheDirectory), e.ParamName);
    }

    [Fact]
    public void A_cubin_cache_folder_path_is_accepted()
    {
        new CudaBackendOptions { CubinCacheDirectory = "/var/cache/kvfusion", DeviceOrdinal = 3 }.Validate();
    }

    [Fact]
    public void Creating_a_backend_validates_the_options_before_looking_for_a_device()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CudaBackend.Create(new CudaBackendOptions { StagingBufferBytes = 1 }));

        Assert.Equal(nameof(CudaBackendOptions.StagingBufferBytes), e.ParamName);
    }
}
