using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Transformer;

[Collection(SharedModelsGroup.Name)]
public sealed class InferenceSessionArgumentTests(CpuModelFixture fixture)
{
    [SkippableTheory]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    [InlineData(0)]
    public void A_token_id_outside_the_vocabulary_is_refused_before_anything_changes(int offsetFromVocabulary)
    {
        var model = fixture.Model("zoo/mistral");
        var bad = offsetFromVocabulary < 0 ? -1 : model.Config.VocabSize + Math.Min(offsetFromVocabulary, 1000);
        using var session = model.CreateSession(64);
        var logits = new float[model.Config.VocabSize];
        session.Prefill([1, 2, 3], logits);
        var expected = new float[logits.Length];
        using (var reference = model.CreateSession(64))
        {
            reference.Prefill([1, 2, 3], expected);
            reference.Decode(4, expected);
        }

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => session.Prefill([5, bad, 6], logits));
        Assert.Contains($"Token id {bad} at row 1", e.Message, StringComparison.Ordinal);
        Assert.Equal(3, session.Length);

        // The session goes on as if the bad call never happened.
        session.Decode(4, logits);
        Assert.Equal(expected, logits);
    }
}
