using System.Globalization;
using System.Text;
using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Backend;

/// <summary>Facts about one CUDA device, read through the driver API.</summary>
public sealed record CudaDeviceInfo(
    int Ordinal,
    string Name,
    int ComputeMajor,
    int ComputeMinor,
    int Multiprocessors,
    long TotalMemoryBytes,
    int MaxSharedMemoryPerBlockOptin,
    double? TheoreticalBandwidthBytesPerSecond,
    int DriverVersion)
{
    /// <summary>The NVRTC architecture name, e.g. <c>sm_90</c>.</summary>
    public string Architecture => string.Create(CultureInfo.InvariantCulture, $"sm_{ComputeMajor}{ComputeMinor}");

    /// <summary>A one-line description.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name} ({Architecture}, {Multiprocessors} SMs, {TotalMemoryBytes / (1024.0 * 1024 * 1024):F0} GiB, driver {DriverVersion / 1000}.{DriverVersion % 1000 / 10})");
}

/// <summary>Finds CUDA devices.</summary>
public static unsafe class CudaDevices
{
    private static readonly Lock Gate = new();
    private static bool _initialized;

    /// <summary>Loads the driver, initializes it and reads the facts of device <paramref name="ordinal"/>.</summary>
    /// <exception cref="CudaLibraryNotFoundException">The driver library is not installed.</exception>
    /// <exception cref="CudaException">The driver reports no device, or the ordinal is out of range.</exception>
    public static CudaDeviceInfo Describe(int ordinal)
    {
        Initialize();
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out var count), nameof(CudaDriver.cuDeviceGetCount));
        if (count == 0)
        {
            throw new CudaException("cuDeviceGetCount", 100, "CUDA_ERROR_NO_DEVICE", "the driver reports no CUDA device");
        }

        if (ordinal < 0 || ordinal >= count)
        {
            throw new CudaException($"CUDA device {ordinal} does not exist: the driver reports {count} device{(count == 1 ? "" : "s")}.");
        }

        CudaDriver.Check(CudaDriver.cuDeviceGet(out var device, ordinal), nameof(CudaDriver.cuDeviceGet));
        var name = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(name, 256, device), nameof(CudaDriver.cuDeviceGetName));
        var length = new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0);
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem(out var total, device), nameof(CudaDriver.cuDeviceTotalMem));
        CudaDriver.Check(CudaDriver.cuDriverGetVersion(out var driverVersion), nameof(CudaDriver.cuDriverGetVersion));

        // Memory clock and bus width may be unavailable on newer drivers; then the theoretical bandwidth is unknown.
        double? bandwidth = null;
        if (CudaDriver.cuDeviceGetAttribute(out var clockKhz, CudaDriver.DeviceAttributeMemoryClockRate, device) == 0
            && CudaDriver.cuDeviceGetAttribute(out var busBits, CudaDriver.DeviceAttributeGlobalMemoryBusWidth, device) == 0
            && clockKhz > 0 && busBits > 0)
        {
            bandwidth = 2.0 * clockKhz * 1000.0 * (busBits / 8.0);
        }

        return new CudaDeviceInfo(
            ordinal,
            Encoding.UTF8.GetString(name, length < 0 ? 256 : length),
            Attribute(device, CudaDriver.DeviceAttributeComputeCapabilityMajor),
            Attribute(device, CudaDriver.DeviceAttributeComputeCapabilityMinor),
            Attribute(device, CudaDriver.DeviceAttributeMultiprocessorCount),
            (long)total,
            Attribute(device, CudaDriver.DeviceAttributeMaxSharedMemoryPerBlockOptin),
            bandwidth,
            driverVersion);
    }

    /// <summary>
    /// Whether a CUDA device can be used here; when not, <paramref name="reason"/> starts with "no CUDA device" and
    /// says why (no driver library, no device, driver error).
    /// </summary>
    public static bool TryDescribe(int ordinal, out CudaDeviceInfo? info, out string reason)
    {
        try
        {
            info = Describe(ordinal);
            reason = string.Empty;
            return true;
        }
        catch (CudaLibraryNotFoundException e)
        {
            info = null;
            reason = "no CUDA device: " + e.Message;
            return false;
        }
        catch (CudaException e)
        {
            info = null;
            reason = "no CUDA device: " + e.Message;
            return false;
        }
    }

    internal static int Handle(int ordinal)
    {
        Initialize();
        CudaDriver.Check(CudaDriver.cuDeviceGet(out var device, ordinal), nameof(CudaDriver.cuDeviceGet));
        return device;
    }

    private static void Initialize()
    {
        lock (Gate)
        {
            if (_initialized)
            {
                return;
            }

            CudaLibraries.Require(CudaLibraryKind.Driver);
            CudaDriver.Check(CudaDriver.cuInit(0), nameof(CudaDriver.cuInit));
            _initialized = true;
        }
    }

    private static int Attribute(int device, int attribute)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var value, attribute, device), $"cuDeviceGetAttribute({attribute})");
        return value;
    }
}
