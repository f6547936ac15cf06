using Xunit;

namespace KvFusion.TestSupport;

/// <summary>
/// Where the checks that must fail on a NaN or an infinity get one: each non-finite value at the first logit, in the
/// middle and at the last of 4099 (past any vector width).
/// </summary>
public static class NonFiniteLogits
{
    public const int Count = 4099;

    public static TheoryData<float, int> Injections { get; } = Build();

    /// <summary>A smooth row of logits and a copy with <paramref name="bad"/> at <paramref name="at"/>.</summary>
    public static (float[] Clean, float[] Dirty) Row(float bad, int at)
    {
        var clean = new float[Count];
        for (var i = 0; i < clean.Length; i++)
        {
            clean[i] = MathF.Sin(i);
        }

        var dirty = (float[])clean.Clone();
        dirty[at] = bad;
        return (clean, dirty);
    }

    private static TheoryData<float, int> Build()
    {
        var data = new TheoryData<float, int>();
        foreach (var value in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            foreach (var at in new[] { 0, Count / 2, Count - 1 })
            {
                data.Add(value, at);
            }
        }

        return data;
    }
}
