using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Evaluation;

/// <summary>How well one mode's quality estimate tracks its measured KL, and what its gate let through.</summary>
/// <param name="Mode">The mode.</param>
/// <param name="Cases">Cases with an estimate.</param>
/// <param name="Spearman">Rank correlation of the estimate with the measured KL across cases (NaN below 3 cases or without variation).</param>
/// <param name="MeanEstimatedKl">Mean estimate at the requested ratio.</param>
/// <param name="MeanKl">Mean measured KL.</param>
/// <param name="Passed">Cases within the floor at the requested ratio.</param>
/// <param name="Raised">Cases whose ratio was raised.</param>
/// <param name="FellBack">Cases prefilled in full.</param>
/// <param name="Leaked">Cases let through (passed or raised) whose measured KL is above the floor.</param>
/// <param name="AboveFloor">Cases whose measured KL is above the floor (as fused: 0 for a fallback).</param>
public sealed record QualityGateResult(
    string Mode, int Cases, double Spearman, double MeanEstimatedKl, double MeanKl, int Passed, int Raised, int FellBack, int Leaked, int AboveFloor);

/// <summary>Calibration statistics of blend's quality gate over evaluated cases.</summary>
public static class QualityGateStatistics
{
    /// <summary>The name of the summary over every blend mode's cases together.</summary>
    public const string Pooled = "all blend modes";

    /// <summary>
    /// The gate's statistics for every mode whose cases carry an estimate, then (with two or more such modes) for all
    /// of their cases together, named <see cref="Pooled"/>: the gate chooses between ratios, so its estimate must rank
    /// a case at one ratio against another case at another.
    /// </summary>
    public static IReadOnlyList<QualityGateResult> Summarize(IReadOnlyList<FusionModeResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var summaries = new List<QualityGateResult>();
        var gated = results.Where(r => r.PerCase.Any(c => c.Quality is not null)).ToList();
        foreach (var r in gated)
        {
            summaries.Add(Summarize(r.Mode, [.. r.PerCase.Where(c => c.Quality is not null)]));
        }

        if (gated.Count > 1)
        {
            summaries.Add(Summarize(Pooled, [.. gated.SelectMany(r => r.PerCase.Where(c => c.Quality is not null))]));
        }

        return summaries;
    }

    private static QualityGateResult Summarize(string mode, List<FusionCaseResult> cases)
    {
        // The rank correlation is of the estimate at the ratio used with the KL measured there; a case answered by
        // full has no blend KL to compare.
        var ungated = cases.Where(c => c.Quality!.Decision != QualityDecision.FellBackToFull).ToList();
        var spearman = Spearman(
            ungated.Select(c => c.Quality!.EstimatedKl).ToList(),
            ungated.Select(c => c.MeanKl).ToList());
        var floor = cases[0].Quality!.Floor;
        var leaked = floor is { } f ? ungated.Count(c => c.MeanKl > f) : 0;
        return new QualityGateResult(
            mode,
            cases.Count,
            spearman,
            cases.Average(c => c.Quality!.RequestedEstimatedKl),
            cases.Average(c => c.MeanKl),
            cases.Count(c => c.Quality!.Decision == QualityDecision.Passed),
            cases.Count(c => c.Quality!.Decision == QualityDecision.RatioRaised),
            cases.Count(c => c.Quality!.Decision == QualityDecision.FellBackToFull),
            leaked,
            floor is { } g ? cases.Count(c => c.MeanKl > g) : 0);
    }

    /// <summary>
    /// Fits a calibration on every case of every blend mode given: the signal each case's estimate came from against
    /// its measured KL. Cases that fell back to full are left out (their KL is full's).
    /// </summary>
    public static QualityCalibration Calibrate(IReadOnlyList<FusionModeResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var pairs = results.SelectMany(r => r.PerCase)
            .Where(c => c.Quality is { Decision: not QualityDecision.FellBackToFull })
            .Select(c => (c.Quality!.Signal, c.MeanKl))
            .ToList();
        return QualityCalibration.Fit(pairs);
    }

    /// <summary>Spearman's rank correlation (average ranks for ties); NaN below 3 pairs or when either side is constant.</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
        {
            throw new ArgumentException("Both sides need the same number of values.", nameof(y));
        }

        if (x.Count < 3)
        {
            return double.NaN;
        }

        var rx = Ranks(x);
        var ry = Ranks(y);
        double mx = rx.Average(), my = ry.Average(), sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < rx.Length; i++)
        {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }

        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    private static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        var start = 0;
        while (start < order.Length)
        {
            var end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]])
            {
                end++;
            }

            var rank = (start + end) / 2.0 + 1;
            for (var i = start; i <= end; i++)
            {
                ranks[order[i]] = rank;
            }

            start = end + 1;
        }

        return ranks;
    }
}
