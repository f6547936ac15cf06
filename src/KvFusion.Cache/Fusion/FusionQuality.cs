namespace KvFusion.Cache.Fusion;

/// <summary>What blend's quality gate decided for a request.</summary>
public enum QualityDecision
{
    /// <summary>No floor was set: the estimate is reported, nothing was changed.</summary>
    Unchecked,

    /// <summary>The estimate at the requested ratio is within the floor.</summary>
    Passed,

    /// <summary>The ratio was raised until the estimate came within the floor.</summary>
    RatioRaised,

    /// <summary>No ratio up to the gate's limit came within the floor: the prompt was prefilled in full.</summary>
    FellBackToFull,
}

/// <summary>Blend's estimate of its deviation from <c>full</c>, what the gate did with it, and what that cost.</summary>
public sealed record FusionQuality
{
    /// <summary>The estimated KL(full ‖ fused) of the next-token distribution at the ratio used (0 when fallen back to full).</summary>
    public required double EstimatedKl { get; init; }

    /// <summary>The uncalibrated signal behind the estimate (at the ratio used).</summary>
    public required double Signal { get; init; }

    /// <summary>The estimate at the requested ratio, before the gate acted.</summary>
    public required double RequestedEstimatedKl { get; init; }

    /// <summary>The floor applied (largest estimated KL let through), or null when none was set.</summary>
    public double? Floor { get; init; }

    /// <summary>The gate's decision.</summary>
    public required QualityDecision Decision { get; init; }

    /// <summary>The final recompute ratio (of chunk tokens, after the last check layer); 1 when fallen back to full.</summary>
    public required double Ratio { get; init; }

    /// <summary>The ratio the request asked for.</summary>
    public required double RequestedRatio { get; init; }

    /// <summary>
    /// What the gate cost: the time spent estimating, plus the discarded blend work and the full prefill when it fell
    /// back (the extra rows of a raised ratio are in <see cref="FusionReport.RecomputedPerLayer"/>).
    /// </summary>
    public required TimeSpan Cost { get; init; }

    /// <summary>The wire and metric name of a decision: <c>unchecked</c>, <c>passed</c>, <c>ratio_raised</c>, <c>fell_back_to_full</c>.</summary>
    public static string NameOf(QualityDecision decision) => decision switch
    {
        QualityDecision.Unchecked => "unchecked",
        QualityDecision.Passed => "passed",
        QualityDecision.RatioRaised => "ratio_raised",
        QualityDecision.FellBackToFull => "fell_back_to_full",
        _ => throw new ArgumentOutOfRangeException(nameof(decision), decision, "Not a quality decision."),
    };
}
