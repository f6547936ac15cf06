namespace KvFusion.Diagnostics.Golden;

/// <summary>
/// Where two logit vectors differ most. <see cref="MaxAbs"/> is NaN or infinite when either vector holds a NaN or an
/// infinity; <see cref="Index"/> is then the first such element.
/// </summary>
/// <param name="MaxAbs">Largest absolute difference (NaN or infinite at a non-finite element).</param>
/// <param name="Index">Element of <see cref="MaxAbs"/>, or -1 for empty vectors.</param>
public readonly record struct LogitDifference(double MaxAbs, int Index)
{
    /// <summary>Whether every element was finite and within <paramref name="tolerance"/> (NaN and infinity never are).</summary>
    public bool IsWithin(double tolerance) => MaxAbs <= tolerance;

    /// <summary>Whether a NaN or an infinity was found.</summary>
    public bool IsNonFinite => !double.IsFinite(MaxAbs);
}

/// <summary>
/// The one comparison of logits against a reference that the golden checks (GoldenCheck and the engine's tests) share,
/// so that a NaN cannot hide: a running maximum updated with <c>if (!(d &lt;= worst))</c> takes a NaN and then loses it
/// to the next finite difference, which let a NaN anywhere but the last element pass.
/// </summary>
public static class LogitComparison
{
    /// <summary>The largest absolute difference, stopping at the first non-finite element of either vector.</summary>
    /// <exception cref="ArgumentException">The vectors differ in length.</exception>
    public static LogitDifference MaxAbsDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        if (expected.Length != actual.Length)
        {
            throw new ArgumentException($"{expected.Length} expected logits, {actual.Length} actual.", nameof(actual));
        }

        double worst = 0;
        var at = expected.IsEmpty ? -1 : 0;
        for (var i = 0; i < expected.Length; i++)
        {
            // In double, |e − a| is NaN or ∞ exactly when e or a is (∞ − ∞ is NaN), so this one test catches both.
            var d = Math.Abs((double)expected[i] - actual[i]);
            if (!double.IsFinite(d))
            {
                return new LogitDifference(d, i);
            }

            if (d > worst)
            {
                worst = d;
                at = i;
            }
        }

        return new LogitDifference(worst, at);
    }
}
