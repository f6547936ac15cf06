using KvFusion.Diagnostics.Golden;

namespace KvFusion.Diagnostics.Tests.Golden;

public sealed class LogitComparisonTests
{
    [Theory]
    [MemberData(nameof(NonFiniteLogits.Injections), MemberType = typeof(NonFiniteLogits))]
    public void A_non_finite_value_on_either_side_is_never_within_tolerance_and_is_located(float bad, int at)
    {
        var (clean, dirty) = NonFiniteLogits.Row(bad, at);
        dirty[4000] += 1f; // a larger finite difference elsewhere must not mask it

        foreach (var diff in new[] { LogitComparison.MaxAbsDifference(clean, dirty), LogitComparison.MaxAbsDifference(dirty, clean) })
        {
            Assert.True(diff.IsNonFinite);
            Assert.False(diff.IsWithin(double.MaxValue));
            Assert.Equal(at, diff.Index);
        }
    }

    [Fact]
    public void Equal_infinities_still_fail()
    {
        float[] a = [1f, float.PositiveInfinity];
        Assert.False(LogitComparison.MaxAbsDifference(a, a).IsWithin(1));
    }

    [Fact]
    public void The_largest_finite_difference_and_its_index_are_reported()
    {
        var d = LogitComparison.MaxAbsDifference([1f, 2f, 3f, 4f], [1f, 2.5f, 2f, 4.25f]);
        Assert.Equal(1.0, d.MaxAbs, 6);
        Assert.Equal(2, d.Index);
        Assert.True(d.IsWithin(1.0));
        Assert.False(d.IsWithin(0.99));
    }

    [Fact]
    public void Vectors_of_different_lengths_are_an_argument_error() =>
        Assert.Throws<ArgumentException>(() => LogitComparison.MaxAbsDifference([1f], [1f, 2f]));
}
