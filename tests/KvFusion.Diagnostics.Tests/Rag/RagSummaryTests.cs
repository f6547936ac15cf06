using KvFusion.Diagnostics.Rag;

namespace KvFusion.Diagnostics.Tests.Rag;

public sealed class RagSummaryTests
{
    private static RagQuestionResult Result(int index, double full, double blend, int[] fullTokens, int[] blendTokens, string retrievedPage) =>
        new(
            index,
            new RagQuestion("q" + index, "library/copy.rst.txt"),
            [new RagRetrievedChunk(new string('a', 64), retrievedPage, 0.5)],
            new RagAnswer("full", full, "f", fullTokens, 100, 0, 100, new Dictionary<string, double>()),
            new RagAnswer("blend", blend, "b", blendTokens, 100, 90, 15, new Dictionary<string, double>()));

    [Fact]
    public void The_summary_takes_means_and_medians_of_the_questions_and_counts_identical_answers_and_hits()
    {
        RagQuestionResult[] results =
        [
            Result(1, 100, 50, [1, 2, 3, 4], [1, 2, 3, 4], "library/copy.rst.txt"),
            Result(2, 200, 50, [1, 2, 3, 4], [1, 2, 9, 9], "library/glob.rst.txt"),
            Result(3, 600, 100, [5, 6], [6, 5], "library/copy.rst.txt"),
        ];

        var s = RagSummary.Of(results);

        Assert.Equal(3, s.Questions);
        Assert.Equal(300, s.MeanTtftFullMs, 9);
        Assert.Equal(200, s.MedianTtftFullMs, 9);
        Assert.Equal(200.0 / 3, s.MeanTtftBlendMs, 9);
        Assert.Equal(50, s.MedianTtftBlendMs, 9);
        Assert.Equal((2.0 + 4.0 + 6.0) / 3, s.MeanSpeedup, 9);
        Assert.Equal((1.0 + 0.5 + 0.0) / 3, s.MeanPrefixAgreement, 9);
        Assert.Equal((1.0 + 0.5 + 1.0) / 3, s.MeanTokenOverlap, 9);
        Assert.Equal(1, s.IdenticalAnswers);
        Assert.Equal(2, s.RetrievalHits);
    }

    [Fact]
    public void An_even_number_of_questions_has_the_mean_of_the_middle_two_as_median()
    {
        var s = RagSummary.Of([Result(1, 10, 5, [1], [1], "x"), Result(2, 30, 5, [1], [1], "x")]);
        Assert.Equal(20, s.MedianTtftFullMs, 9);
    }

    [Fact]
    public void A_summary_of_no_question_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => RagSummary.Of([]));
        Assert.Contains("at least one question", e.Message, StringComparison.Ordinal);
    }
}
