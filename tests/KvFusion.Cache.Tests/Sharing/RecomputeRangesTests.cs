using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Tests.Sharing;

public sealed class RecomputeRangesTests
{
    [Theory]
    [InlineData("none", "none", 0)]
    [InlineData("", "none", 0)]
    [InlineData("0-1,4", "0-1,4", 3)]
    [InlineData(" 2 - 3 , 5-5 ", "2-3,5", 3)]
    public void Ranges_parse_and_print_in_one_form(string text, string printed, int layers)
    {
        var ranges = RecomputeRanges.Parse(text);

        Assert.Equal(printed, ranges.ToString());
        Assert.Equal(layers, ranges.LayerCount);
        Assert.Equal(ranges, RecomputeRanges.Parse(printed));
    }

    [Theory]
    [InlineData("1-0", "not a range")]
    [InlineData("0-1,1-2", "increase and be apart")]
    [InlineData("0-1,2", "increase and be apart")]
    [InlineData("3,1", "increase and be apart")]
    [InlineData("a-b", "'a-b' is not a layer")]
    [InlineData("-1", "is not a layer")]
    [InlineData("1-2-3", "is not a layer")]
    public void Malformed_ranges_are_refused_naming_the_problem(string text, string problem)
    {
        var error = Assert.Throws<FormatException>(() => RecomputeRanges.Parse(text));

        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hidden_state_layers_are_the_range_starts_but_layer_zero()
    {
        Assert.Equal([3, 5], RecomputeRanges.Parse("0-1,3,5-6").HiddenStateLayers);
        Assert.True(RecomputeRanges.Parse("0-1,3").Contains(3));
        Assert.False(RecomputeRanges.Parse("0-1,3").Contains(2));
        Assert.Equal("0-5", RecomputeRanges.All(6).ToString());
        Assert.Throws<ArgumentException>(() => RecomputeRanges.Parse("4-6").CheckFits(6));
        RecomputeRanges.Parse("4-5").CheckFits(6);
    }
}
