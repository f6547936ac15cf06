namespace KvFusion.Engine.Generation;

/// <summary>
/// Picks the next token from logits: greedy, or temperature / top-k / top-p sampling with a seeded SplitMix64
/// generator (stable across runtimes). Reuses its buffers, so sampling allocates nothing per token.
/// </summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _options;
    private ulong _state;
    private float[] _probs = [];
    private int[] _order = [];

    /// <summary>Creates a sampler.</summary>
    public TokenSampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _state = options.Seed;
    }

    /// <summary>Chooses a token id.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0f)
        {
            return ArgMax(logits);
        }

        var n = logits.Length;
        if (_probs.Length < n)
        {
            _probs = new float[n];
            _order = new int[n];
        }

        var max = logits[ArgMax(logits)];
        var probs = _probs.AsSpan(0, n);
        var order = _order.AsSpan(0, n);
        for (var i = 0; i < n; i++)
        {
            probs[i] = (logits[i] - max) / _options.Temperature;
            order[i] = i;
        }

        // Sort descending by logit (keys negated so the default ascending sort works).
        for (var i = 0; i < n; i++)
        {
            probs[i] = -probs[i];
        }

        probs.Sort(order);
        var keep = _options.TopK > 0 ? Math.Min(_options.TopK, n) : n;
        double sum = 0;
        for (var i = 0; i < keep; i++)
        {
            probs[i] = MathF.Exp(-probs[i]);
            sum += probs[i];
        }

        if (_options.TopP < 1f)
        {
            double cumulative = 0;
            var cut = keep;
            for (var i = 0; i < keep; i++)
            {
                cumulative += probs[i] / sum;
                if (cumulative >= _options.TopP)
                {
                    cut = i + 1;
                    break;
                }
            }

            keep = cut;
            sum = 0;
            for (var i = 0; i < keep; i++)
            {
                sum += probs[i];
            }
        }

        var target = NextDouble() * sum;
        double acc = 0;
        for (var i = 0; i < keep; i++)
        {
            acc += probs[i];
            if (acc >= target)
            {
                return order[i];
            }
        }

        return order[keep - 1];
    }

    /// <summary>Index of the largest value (the first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    private double NextDouble()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}
