using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;

namespace KvFusion.Cache.Tests.Evaluation;

[Collection(TinyModelGroup.Name)]
public sealed class FusionEvaluatorTests(TinyModelFixture fixture)
{
    [SkippableFact]
    public async Task A_case_with_an_empty_answer_is_an_invalid_request_naming_the_case()
    {
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var cases = new[]
        {
            new FusionCase(null, ["The json module encodes objects."], "What does json do?", " It encodes objects."),
            new FusionCase(null, ["A list comprehension builds a list."], "What is a comprehension?", ""),
        };

        var e = await Assert.ThrowsAsync<FusionException>(() => new FusionEvaluator(engine, new FusionEvaluationOptions { TtftRuns = 1, GreedyTokens = 2 })
            .EvaluateAsync(cases, [new FusionModeSpec(FusionMode.Full, 1)]));
        Assert.Equal(FusionError.InvalidRequest, e.Error);
        Assert.Contains("Case 2 has an empty answer", e.Message, StringComparison.Ordinal);
    }
}
