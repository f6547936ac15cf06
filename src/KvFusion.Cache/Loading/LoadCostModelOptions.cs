using System.ComponentModel.DataAnnotations;

namespace KvFusion.Cache.Loading;

/// <summary>Options of <see cref="LoadCostModel"/>.</summary>
public sealed class LoadCostModelOptions
{
    /// <summary>
    /// Weight an older observation keeps per new one (0.5: the last two or three dominate), so estimates follow a link
    /// whose bandwidth changes from chunk to chunk, as in CacheGen's traces.
    /// </summary>
    [Range(0.01, 1.0)]
    public double Forgetting { get; set; } = 0.5;

    /// <summary>Observations of a tier, codec or recompute before its estimate is trusted.</summary>
    [Range(1, 1000)]
    public int MinSamples { get; set; } = 2;

    /// <summary>Throws when a value is out of range.</summary>
    public void Validate()
    {
        if (!(Forgetting is >= 0.01 and <= 1.0))
        {
            throw new ArgumentOutOfRangeException(nameof(Forgetting), Forgetting, "Forgetting must be in [0.01, 1].");
        }

        if (MinSamples is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(MinSamples), MinSamples, "MinSamples must be in [1, 1000].");
        }
    }
}
