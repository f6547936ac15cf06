using KvFusion.Diagnostics.Golden;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Transformer;

[Collection(SharedModelsGroup.Name)]
public sealed class GoldenLogitsTests(CpuModelFixture fixture)
{
    private const float Tolerance = 2e-3f;

    [SkippableTheory]
    [InlineData("tiny-pydocs")]
    [InlineData("tiny-pydocs-coder")]
    public void Tiny_models_reproduce_transformers_logits_at_every_golden_position(string name)
    {
        var model = fixture.Model(name);
        using var golden = SharedModels.Golden(name);
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            var ids = SharedModels.Ints(c.GetProperty("input_ids"));
            using var session = model.CreateSession(ids.Length + 1);
            var logits = new float[model.Config.VocabSize];
            var positions = c.GetProperty("logits_at_positions");
            // Prefill in pieces so that the logits at the golden positions are observable.
            var checkpoints = positions.EnumerateObject().Select(p => int.Parse(p.Name, System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
            var done = 0;
            foreach (var pos in checkpoints)
            {
                session.Prefill(ids.AsSpan(done, pos + 1 - done), logits);
                done = pos + 1;
                AssertClose(SharedModels.Floats(positions.GetProperty(pos.ToString(System.Globalization.CultureInfo.InvariantCulture))), logits, $"{name} position {pos}");
            }

            session.Prefill(ids.AsSpan(done), logits);
            AssertClose(SharedModels.Floats(c.GetProperty("last_logits")), logits, $"{name} last ({ids.Length} tokens)");
        }
    }

    [SkippableTheory]
    [InlineData("zoo/qwen2-bias")]
    [InlineData("zoo/qwen3-qknorm")]
    [InlineData("zoo/mistral")]
    [InlineData("zoo/llama3-ropescaling")]
    public void Zoo_models_reproduce_transformers_first_and_last_logits(string name)
    {
        var model = fixture.Model(name);
        using var golden = SharedModels.Golden(name);
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            var ids = SharedModels.Ints(c.GetProperty("input_ids"));
            using var session = model.CreateSession(ids.Length);
            var logits = new float[model.Config.VocabSize];
            session.Prefill(ids.AsSpan(0, 1), logits);
            AssertClose(SharedModels.Floats(c.GetProperty("first_logits")), logits, $"{name} first");
            if (ids.Length > 1)
            {
                session.Prefill(ids.AsSpan(1), logits);
            }

            AssertClose(SharedModels.Floats(c.GetProperty("last_logits")), logits, $"{name} last ({ids.Length} tokens)");
        }
    }

    [SkippableTheory]
    [InlineData("tiny-pydocs")]
    [InlineData("tiny-pydocs-coder")]
    public void Greedy_continuations_match_transformers_exactly(string name)
    {
        var model = fixture.Model(name);
        using var golden = SharedModels.Golden(name);
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            var ids = SharedModels.Ints(c.GetProperty("input_ids"));
            var expected = SharedModels.Ints(c.GetProperty("greedy_next_24"));
            using var session = model.CreateSession(ids.Length + expected.Length);
            var logits = new float[model.Config.VocabSize];
            session.Prefill(ids, logits);
            var got = new List<int>();
            for (var i = 0; i < expected.Length; i++)
            {
                var next = TokenSampler.ArgMax(logits);
                got.Add(next);
                if (i + 1 < expected.Length)
                {
                    session.Decode(next, logits);
                }
            }

            Assert.Equal(expected, got);
        }
    }

    [Theory]
    [MemberData(nameof(NonFiniteLogits.Injections), MemberType = typeof(NonFiniteLogits))]
    public void A_non_finite_logit_anywhere_fails_the_comparison(float bad, int at)
    {
        var (expected, actual) = NonFiniteLogits.Row(bad, at);

        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertClose(expected, actual, "injected"));
    }

    internal static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var diff = LogitComparison.MaxAbsDifference(expected, actual);
        var at = Math.Max(diff.Index, 0);
        Assert.True(diff.IsWithin(Tolerance), $"{what}: max |Δ| = {diff.MaxAbs:G4} at {diff.Index} (expected {expected[at]}, got {actual[at]})");
    }
}
