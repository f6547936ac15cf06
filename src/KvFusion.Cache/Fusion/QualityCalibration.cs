using System.Globalization;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// Maps blend's quality signal (the query's attention share on chunk tokens left unrecomputed, summed over the layers
/// after the first check layer) to an estimated KL(full ‖ fused) of the next-token distribution, as
/// <c>Scale · signal^Exponent</c>. Fitted per model by <c>kvfusion eval fusion --calibrate</c> on case files: a
/// log-log least-squares line, raised by its largest residual so that no calibration case's measured KL is above
/// its estimate.
/// </summary>
/// <param name="Scale">Multiplier, above 0.</param>
/// <param name="Exponent">Power of the signal, above 0 (the estimate grows with the signal).</param>
public sealed record QualityCalibration(double Scale, double Exponent)
{
    /// <summary>The estimated KL for a signal (0 for a signal of 0: nothing left unrecomputed).</summary>
    public double Estimate(double signal) => signal <= 0 ? 0 : Scale * Math.Pow(signal, Exponent);

    /// <summary>The largest signal whose estimate is at most <paramref name="kl"/>.</summary>
    public double SignalFor(double kl) => kl <= 0 ? 0 : Math.Pow(kl / Scale, 1 / Exponent);

    /// <summary>Throws when the calibration cannot be used.</summary>
    public void Validate()
    {
        if (!(Scale > 0 && double.IsFinite(Scale)) || !(Exponent > 0 && double.IsFinite(Exponent)))
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"A quality calibration needs a positive finite scale and exponent; got scale {Scale}, exponent {Exponent}."));
        }
    }

    /// <summary>
    /// Fits a calibration to (signal, measured KL) pairs: least squares of log KL on log signal, then the intercept
    /// raised by the largest residual, so every pair's KL is at most its estimate. Pairs with a zero signal or KL carry
    /// no slope information and are left out of the fit (a zero signal is estimated 0 anyway).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 3 usable pairs, or signals that do not vary.</exception>
    public static QualityCalibration Fit(IReadOnlyList<(double Signal, double Kl)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        var xs = new List<double>();
        var ys = new List<double>();
        foreach (var (signal, kl) in pairs)
        {
            if (signal > 0 && kl > 0 && double.IsFinite(signal) && double.IsFinite(kl))
            {
                xs.Add(Math.Log(signal));
                ys.Add(Math.Log(kl));
            }
        }

        if (xs.Count < 3)
        {
            throw new ArgumentException($"A calibration needs at least 3 cases with a positive signal and KL; got {xs.Count}.", nameof(pairs));
        }

        double mx = 0, my = 0;
        for (var i = 0; i < xs.Count; i++)
        {
            mx += xs[i];
            my += ys[i];
        }

        mx /= xs.Count;
        my /= xs.Count;
        double sxx = 0, sxy = 0;
        for (var i = 0; i < xs.Count; i++)
        {
            sxx += (xs[i] - mx) * (xs[i] - mx);
            sxy += (xs[i] - mx) * (ys[i] - my);
        }

        if (sxx <= 1e-12)
        {
            throw new ArgumentException("The signals of the calibration cases do not vary: nothing to fit.", nameof(pairs));
        }

        // A signal that does not grow the KL would make the gate meaningless; keep the slope positive.
        var slope = Math.Max(sxy / sxx, 0.05);
        var intercept = my - slope * mx;
        var worst = double.NegativeInfinity;
        for (var i = 0; i < xs.Count; i++)
        {
            worst = Math.Max(worst, ys[i] - (intercept + slope * xs[i]));
        }

        return new QualityCalibration(Math.Exp(intercept + worst), slope);
    }
}
