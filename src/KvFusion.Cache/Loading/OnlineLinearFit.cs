namespace KvFusion.Cache.Loading;

/// <summary>
/// A running least-squares fit of y = intercept + slope · x over observations whose weight decays by a forgetting
/// factor per new one, so the fit follows a link or a machine whose speed changes. Until the observations span
/// sizes far enough apart to separate the two terms, the intercept stays at its last value (zero at first) and
/// the slope explains the rest. Safe for concurrent use.
/// </summary>
public sealed class OnlineLinearFit
{
    private readonly Lock _gate = new();
    private readonly double _forgetting;
    private double _w;
    private double _x;
    private double _y;
    private double _xx;
    private double _xy;
    private double _intercept;
    private double _slope;
    private long _samples;

    /// <summary>Creates an empty fit; <paramref name="forgetting"/> in (0, 1] is the weight each older observation keeps per new one.</summary>
    public OnlineLinearFit(double forgetting)
    {
        if (!(forgetting > 0 && forgetting <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(forgetting), forgetting, "The forgetting factor must be in (0, 1].");
        }

        _forgetting = forgetting;
    }

    /// <summary>Observations so far.</summary>
    public long Samples
    {
        get { lock (_gate) { return _samples; } }
    }

    /// <summary>The fitted intercept (fixed cost), never negative.</summary>
    public double Intercept
    {
        get { lock (_gate) { return _intercept; } }
    }

    /// <summary>The fitted slope (cost per unit of x), never negative.</summary>
    public double Slope
    {
        get { lock (_gate) { return _slope; } }
    }

    /// <summary>Adds an observation of cost <paramref name="y"/> at size <paramref name="x"/> (both finite, zero or more).</summary>
    public void Observe(double x, double y)
    {
        if (!(x >= 0) || !(y >= 0) || double.IsInfinity(x) || double.IsInfinity(y))
        {
            throw new ArgumentOutOfRangeException(nameof(x), $"An observation needs finite sizes and costs of zero or more (got x = {x}, y = {y}).");
        }

        lock (_gate)
        {
            _w = (_w * _forgetting) + 1;
            _x = (_x * _forgetting) + x;
            _y = (_y * _forgetting) + y;
            _xx = (_xx * _forgetting) + (x * x);
            _xy = (_xy * _forgetting) + (x * y);
            _samples++;
            Refit();
        }
    }

    /// <summary>Intercept, slope and observations, read together.</summary>
    public (double Intercept, double Slope, long Samples) Snapshot()
    {
        lock (_gate)
        {
            return (_intercept, _slope, _samples);
        }
    }

    /// <summary>The predicted cost at size <paramref name="x"/>.</summary>
    public double Predict(double x)
    {
        lock (_gate)
        {
            return _intercept + (_slope * x);
        }
    }

    private void Refit()
    {
        var meanX = _x / _w;
        var meanY = _y / _w;
        var varX = (_xx / _w) - (meanX * meanX);
        var covXY = (_xy / _w) - (meanX * meanY);

        // Sizes must spread by a few percent of their mean before the intercept can be told from the slope.
        if (_samples >= 2 && varX > 1e-3 * meanX * meanX && varX > 0)
        {
            var slope = covXY / varX;
            var intercept = meanY - (slope * meanX);
            if (slope >= 0 && intercept >= 0)
            {
                _slope = slope;
                _intercept = intercept;
                return;
            }

            if (slope < 0)
            {
                // Cost falling with size is noise around a fixed cost.
                _slope = 0;
                _intercept = meanY;
                return;
            }
        }

        // Keep the intercept (clamped to what the mean allows) and let the slope explain the rest.
        _intercept = Math.Min(_intercept, meanY);
        _slope = meanX > 0 ? (meanY - _intercept) / meanX : 0;
    }
}
