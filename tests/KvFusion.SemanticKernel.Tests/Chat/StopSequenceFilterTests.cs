using KvFusion.Engine.Generation;

namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>The stop filter both chat clients' service and engine paths cut with.</summary>
public sealed class StopSequenceFilterTests
{
    [Fact]
    public void Text_that_may_begin_a_stop_sequence_is_held_until_the_next_piece_decides()
    {
        var filter = new StopSequenceFilter(["END"]);

        Assert.Equal("abc ", filter.Add("abc E"));
        Assert.Equal("En", filter.Add("n"));
        Assert.Equal("d ", filter.Add("d E"));
        Assert.Equal("", filter.Add("N"));
        Assert.Equal("", filter.Add("D and more"));
        Assert.True(filter.Stopped);
        Assert.Equal("", filter.Flush());
    }

    [Fact]
    public void The_earliest_of_several_stop_sequences_wins()
    {
        var filter = new StopSequenceFilter(["world", "lo"]);

        Assert.Equal("hel", filter.Add("hello world"));
        Assert.True(filter.Stopped);
    }

    [Fact]
    public void Without_a_stop_the_held_text_comes_out_at_the_end()
    {
        var filter = new StopSequenceFilter(["xyz"]);

        Assert.Equal("ab", filter.Add("abx"));
        Assert.Equal("x", filter.Flush());
        Assert.False(filter.Stopped);
    }

    [Fact]
    public void An_empty_stop_sequence_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new StopSequenceFilter(["ok", ""]));

        Assert.Contains("Stop sequence 1", e.Message, StringComparison.Ordinal);
    }
}
