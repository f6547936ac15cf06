using KvFusion.Diagnostics.Rag;

namespace KvFusion.Diagnostics.Tests.Rag;

public sealed class RagAgreementTests
{
    [Fact]
    public void The_shared_prefix_counts_the_reference_tokens_before_the_first_difference()
    {
        Assert.Equal(1.0, RagAgreement.SharedPrefix([1, 2, 3, 4], [1, 2, 3, 4]));
        Assert.Equal(0.5, RagAgreement.SharedPrefix([1, 2, 3, 4], [1, 2, 9, 4]));
        Assert.Equal(0.0, RagAgreement.SharedPrefix([1, 2], [2, 1]));
    }

    [Fact]
    public void A_candidate_that_stops_early_or_runs_on_is_measured_against_the_reference_length()
    {
        Assert.Equal(0.5, RagAgreement.SharedPrefix([1, 2, 3, 4], [1, 2]));
        Assert.Equal(1.0, RagAgreement.SharedPrefix([1, 2], [1, 2, 3, 4]));
    }

    [Fact]
    public void Two_empty_answers_agree_and_an_empty_reference_disagrees_with_any_candidate()
    {
        Assert.Equal(1.0, RagAgreement.SharedPrefix([], []));
        Assert.Equal(0.0, RagAgreement.SharedPrefix([], [5]));
        Assert.Equal(1.0, RagAgreement.TokenOverlap([], []));
        Assert.Equal(0.0, RagAgreement.TokenOverlap([], [5]));
    }

    [Fact]
    public void Token_overlap_ignores_order_counts_repeats_once_each_and_divides_by_the_longer_answer()
    {
        Assert.Equal(1.0, RagAgreement.TokenOverlap([1, 2, 3], [3, 2, 1]));
        Assert.Equal(0.5, RagAgreement.TokenOverlap([7, 7, 7, 7], [7, 7]));
        Assert.Equal(0.25, RagAgreement.TokenOverlap([1, 2, 3, 4], [4, 9]));
        Assert.Equal(0.0, RagAgreement.TokenOverlap([1, 2], [3, 4]));
    }
}
