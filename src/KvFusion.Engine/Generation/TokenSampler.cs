using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace KvFusion.Engine.Generation;

/// <summary>
/// Picks the next token from logits: greedy, or temperature / top-k / top-p sampling with a seeded SplitMix64
/// generator (stable across runtimes). Reuses its buffers, so sampling allocates nothing per token. A NaN or infinite
/// logit is an error (<see cref="NonFiniteLogitException"/>), never skipped: see docs/decisions.md.
/// </summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _options;
    private ulong _state;
    private float[] _probs = [];
    private int[] _order = [];
    private int _chosen;

    /// <summary>Creates a sampler.</summary>
    public TokenSampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _state = options.Seed;
    }

    /// <summary>Chooses a token id.</summary>
    /// <exception cref="NonFiniteLogitException">A logit is NaN or infinite; the message names this sampler's token index.</exception>
    public int Next(ReadOnlySpan<float> logits)
    {
        var best = ArgMax(logits, _chosen);
        var token = _options.Temperature == 0f ? best : Sample(logits, logits[best]);
        _chosen++;
        return token;
    }

    private int Sample(ReadOnlySpan<float> logits, float max)
    {
        var n = logits.Length;
        if (_probs.Length < n)
        {
            _probs = new float[n];
            _order = new int[n];
        }

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
    /// <exception cref="ArgumentException">There are no values.</exception>
    /// <exception cref="NonFiniteLogitException">A value is NaN or infinite.</exception>
    public static int ArgMax(ReadOnlySpan<float> values) => ArgMax(values, null);

    private static int ArgMax(ReadOnlySpan<float> values, int? tokenIndex)
    {
        if (values.IsEmpty)
        {
            throw new ArgumentException("There are no logits.", nameof(values));
        }

        var max = FiniteMax(values, tokenIndex);
        return IndexOf(values, max);
    }

    // One vectorized pass: the maximum, and a check that every value is finite (x − x is +0, all bits clear, for
    // finite x and NaN for NaN or ±∞, so OR-ing the bits of x − x flags any of them at the cost of a subtract and an OR).
    private static float FiniteMax(ReadOnlySpan<float> values, int? tokenIndex)
    {
        var width = Vector<float>.Count;
        var i = 0;
        var max = values[0];
        if (Vector.IsHardwareAccelerated && values.Length >= width)
        {
            var vmax = new Vector<float>(values);
            var bits = Vector<int>.Zero;
            for (; i <= values.Length - width; i += width)
            {
                var v = new Vector<float>(values[i..]);
                bits |= Vector.AsVectorInt32(v - v);
                vmax = Vector.Max(vmax, v);
            }

            if (bits != Vector<int>.Zero)
            {
                ThrowNonFinite(values, tokenIndex);
            }

            max = vmax[0];
            for (var lane = 1; lane < width; lane++)
            {
                max = MathF.Max(max, vmax[lane]);
            }
        }

        for (; i < values.Length; i++)
        {
            var x = values[i];
            if (!float.IsFinite(x))
            {
                ThrowNonFinite(values, tokenIndex);
            }

            if (x > max)
            {
                max = x;
            }
        }

        return max;
    }

    // The first index holding max, comparing a vector at a time; values are known finite here.
    private static int IndexOf(ReadOnlySpan<float> values, float max)
    {
        var width = Vector<float>.Count;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var target = new Vector<float>(max);
            for (; i <= values.Length - width; i += width)
            {
                if (Vector.EqualsAny(new Vector<float>(values[i..]), target))
                {
                    break;
                }
            }
        }

        for (; i < values.Length; i++)
        {
            if (values[i] == max)
            {
                return i;
            }
        }

        throw new UnreachableException("The maximum is one of the values.");
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNonFinite(ReadOnlySpan<float> values, int? tokenIndex)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw new NonFiniteLogitException(i, values[i], tokenIndex);
            }
        }

        throw new UnreachableException("A non-finite value was flagged.");
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
