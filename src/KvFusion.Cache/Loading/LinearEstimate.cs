namespace KvFusion.Cache.Loading;

/// <summary>
/// A fitted cost: a fixed part plus a part per unit, with the observations behind it. For times the parts are
/// seconds (per byte, token-layer or fp16 byte); for stored sizes, bytes (the header, and bytes per fp16 byte).
/// </summary>
public readonly record struct LinearEstimate(double Fixed, double PerUnit, long Samples)
{
    /// <summary>The predicted cost of <paramref name="units"/>.</summary>
    public double Predict(double units) => Fixed + (PerUnit * units);

    /// <summary>For a transfer fit (seconds against bytes): the rate in bits per second, infinite when the slope is zero.</summary>
    public double BitsPerSecond => PerUnit > 0 ? 8 / PerUnit : double.PositiveInfinity;
}
