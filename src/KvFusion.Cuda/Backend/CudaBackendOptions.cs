namespace KvFusion.Cuda.Backend;

/// <summary>Settings of <see cref="CudaBackend"/>.</summary>
public sealed class CudaBackendOptions
{
    /// <summary>Smallest staging buffer accepted.</summary>
    public const long MinStagingBufferBytes = 64 * 1024;

    /// <summary>The device ordinal (as the driver numbers devices).</summary>
    public int DeviceOrdinal { get; set; }

    /// <summary>Where compiled cubins are kept (default: <see cref="Kernels.CubinCache.DefaultDirectory"/>).</summary>
    public string? CubinCacheDirectory { get; set; }

    /// <summary>Bytes of each of the two pinned host buffers that stage uploads.</summary>
    public long StagingBufferBytes { get; set; } = 8L << 20;

    /// <summary>
    /// How weights are kept on the device: as stored (F16/BF16, GEMMs on tensor cores with activations rounded to the
    /// same half type) or widened to float32 at load (GEMMs in full float32: twice the memory, for exactness checks).
    /// </summary>
    public CudaWeightPrecision WeightPrecision { get; set; } = CudaWeightPrecision.AsStored;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (DeviceOrdinal < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(DeviceOrdinal), DeviceOrdinal, "The device ordinal must be 0 or more.");
        }

        if (StagingBufferBytes is < MinStagingBufferBytes or > 1L << 30)
        {
            throw new ArgumentOutOfRangeException(nameof(StagingBufferBytes), StagingBufferBytes, "Staging buffers must hold between 64 KiB and 1 GiB.");
        }

        if (!Enum.IsDefined(WeightPrecision))
        {
            throw new ArgumentOutOfRangeException(nameof(WeightPrecision), WeightPrecision, "Unknown weight precision.");
        }

        if (CubinCacheDirectory is not null && string.IsNullOrWhiteSpace(CubinCacheDirectory))
        {
            throw new ArgumentOutOfRangeException(nameof(CubinCacheDirectory), CubinCacheDirectory, "The cubin cache folder must be a path.");
        }
    }
}

/// <summary>How <see cref="CudaBackend"/> keeps weights on the device.</summary>
public enum CudaWeightPrecision
{
    /// <summary>In the checkpoint's dtype.</summary>
    AsStored,

    /// <summary>Widened to float32 at load.</summary>
    Float32,
}
