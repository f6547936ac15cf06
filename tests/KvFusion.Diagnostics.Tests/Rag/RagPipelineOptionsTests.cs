using KvFusion.Diagnostics.Rag;

namespace KvFusion.Diagnostics.Tests.Rag;

public sealed class RagPipelineOptionsTests
{
    [Fact]
    public void The_defaults_are_valid_and_name_the_documented_pages_and_one_question_per_page()
    {
        var options = new RagPipelineOptions();
        options.Validate();
        Assert.Equal(RagDemoSet.Pages, options.Pages);
        Assert.Equal(RagDemoSet.Pages.Count, RagDemoSet.Questions.Count);
        Assert.All(RagDemoSet.Questions, q => Assert.Contains(q.Page, RagDemoSet.Pages));
        Assert.Equal(RagDemoSet.Pages.Count, RagDemoSet.Questions.Select(q => q.Page).Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [InlineData("Top", "Top must be at least 1")]
    [InlineData("MaxTokens", "MaxTokens must be at least 1")]
    [InlineData("ChunkTokens", "ChunkTokens must be at least 8")]
    [InlineData("RecomputeRatio", "RecomputeRatio must be in (0, 1]")]
    [InlineData("Questions", "Questions must hold at least one question")]
    [InlineData("Pages", "Pages must list at least one page")]
    [InlineData("CorpusPath", "CorpusPath must name the corpus")]
    public void An_out_of_range_setting_is_refused_with_a_message_naming_it(string setting, string message)
    {
        var options = setting switch
        {
            "Top" => new RagPipelineOptions { Top = 0 },
            "MaxTokens" => new RagPipelineOptions { MaxTokens = 0 },
            "ChunkTokens" => new RagPipelineOptions { ChunkTokens = 4 },
            "RecomputeRatio" => new RagPipelineOptions { RecomputeRatio = 1.5 },
            "Questions" => new RagPipelineOptions { Questions = [] },
            "Pages" => new RagPipelineOptions { Pages = [] },
            _ => new RagPipelineOptions { CorpusPath = " " },
        };

        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_corpus_path_that_does_not_exist_is_reported_by_name()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-corpus-" + Guid.NewGuid().ToString("N") + ".tar.xz");
        var e = Assert.Throws<FileNotFoundException>(() => RagDemoSet.FindCorpus(missing));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_answers_are_cut_to_one_line_of_the_given_width()
    {
        Assert.Equal("one two", RagConsoleView.Truncate("one\ntwo", 20));
        var cut = RagConsoleView.Truncate(new string('x', 100), 10);
        Assert.Equal(10, cut.Length);
        Assert.EndsWith("…", cut, StringComparison.Ordinal);
    }
}
