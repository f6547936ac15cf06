using KvFusion.SemanticKernel.Retrieval;

namespace KvFusion.SemanticKernel.Tests.Chat;

public sealed class KvFusionChunkMarkersTests
{
    private static readonly string IdA = new('a', 64);
    private static readonly string IdB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF";

    [Fact]
    public void Wrap_then_split_gives_back_the_text_and_the_id()
    {
        var marked = KvFusionChunkMarkers.Wrap("x < y and \"quoted\" & <b>tags</b>", IdA);

        Assert.Equal($"<kvfusion:chunk id=\"{IdA}\">x < y and \"quoted\" & <b>tags</b></kvfusion:chunk>", marked);
        var segment = Assert.Single(KvFusionChunkMarkers.Split(marked));
        Assert.Equal(KvFusionTextSegment.Chunk("x < y and \"quoted\" & <b>tags</b>", IdA), segment);
    }

    [Fact]
    public void Split_keeps_plain_text_around_and_between_markers_in_order()
    {
        var text = "Context:\n" + KvFusionChunkMarkers.Wrap("first", IdA) + "\n" + KvFusionChunkMarkers.Wrap("second", null) + "\nQuestion?";

        var segments = KvFusionChunkMarkers.Split(text);

        Assert.Equal(
            new[]
            {
                KvFusionTextSegment.Plain("Context:\n"),
                KvFusionTextSegment.Chunk("first", IdA),
                KvFusionTextSegment.Plain("\n"),
                KvFusionTextSegment.Chunk("second", null),
                KvFusionTextSegment.Plain("\nQuestion?"),
            },
            segments);
    }

    [Fact]
    public void Split_lowercases_an_uppercase_id()
    {
        var segment = Assert.Single(KvFusionChunkMarkers.Split($"<kvfusion:chunk id=\"{IdB}\">t</kvfusion:chunk>"));

        Assert.Equal(IdB.ToLowerInvariant(), segment.ChunkId);
    }

    [Theory]
    [InlineData("<kvfusion:chunk id=\"abc\">short id</kvfusion:chunk>")]
    [InlineData("<kvfusion:chunk id=\"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\">not hex</kvfusion:chunk>")]
    [InlineData("<kvfusion:chunk>no closing tag")]
    [InlineData("<kvfusion:chunk name=\"x\">other attribute</kvfusion:chunk>")]
    [InlineData("<kvfusion:chunkier>other tag</kvfusion:chunk>")]
    [InlineData("<kvfusion:chunk id=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"")]
    [InlineData("</kvfusion:chunk> before any opening tag")]
    public void Malformed_markers_stay_plain_text(string text)
    {
        var segment = Assert.Single(KvFusionChunkMarkers.Split(text));

        Assert.Equal(KvFusionTextSegment.Plain(text), segment);
    }

    [Fact]
    public void A_malformed_marker_before_a_good_one_stays_text_and_the_good_one_is_found()
    {
        var good = KvFusionChunkMarkers.Wrap("body", IdA);

        var segments = KvFusionChunkMarkers.Split("<kvfusion:chunk id=\"bad\">" + good);

        Assert.Equal(new[] { KvFusionTextSegment.Plain("<kvfusion:chunk id=\"bad\">"), KvFusionTextSegment.Chunk("body", IdA) }, segments);
    }

    [Fact]
    public void Split_of_empty_text_gives_no_segment() => Assert.Empty(KvFusionChunkMarkers.Split(""));

    [Fact]
    public void Wrap_refuses_a_text_holding_the_closing_tag()
    {
        var e = Assert.Throws<ArgumentException>(() => KvFusionChunkMarkers.Wrap("a </kvfusion:chunk> b", IdA));

        Assert.Contains("</kvfusion:chunk>", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrap_refuses_a_malformed_id()
    {
        var e = Assert.Throws<ArgumentException>(() => KvFusionChunkMarkers.Wrap("text", "not-an-id"));

        Assert.Contains("not-an-id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ContainsMarker_tells_marked_from_plain_text()
    {
        Assert.True(KvFusionChunkMarkers.ContainsMarker("x" + KvFusionChunkMarkers.Wrap("t", null)));
        Assert.False(KvFusionChunkMarkers.ContainsMarker("<kvfusion:chunk>unterminated"));
    }
}
