namespace KvFusion.Cache.Loading;

/// <summary>A fitted cost: a fixed part plus a part per unit (byte, token or token-layer), with the observations behind it.</summary>
public readonly record struct CostEstimate(double FixedSeconds, double SecondsPerUnit, long Samples)
{
    /// <summary>The predicted seconds for <paramref name="units"/>.</summary>
    public double Predict(double units) => FixedSeconds + (SecondsPerUnit * units);

    /// <summary>For a transfer fit (units are bytes): the rate in bits per second, infinite when the slope is zero.</summary>
    public double BitsPerSecond => SecondsPerUnit > 0 ? 8 / SecondsPerUnit : double.PositiveInfinity;
}
