using KvFusion.Engine.Generation;

namespace KvFusion.Engine.Tests.Generation;

public sealed class TokenSamplerTests
{
    private static float[] Logits(float bad = 0f, int at = -1) =>
        at >= 0 ? NonFiniteLogits.Row(bad, at).Dirty : NonFiniteLogits.Row(0f, 0).Clean;

    [Theory]
    [MemberData(nameof(NonFiniteLogits.Injections), MemberType = typeof(NonFiniteLogits))]
    public void ArgMax_refuses_a_non_finite_logit_anywhere(float bad, int at)
    {
        var e = Assert.Throws<NonFiniteLogitException>(() => TokenSampler.ArgMax(Logits(bad, at)));

        Assert.Equal(at, e.VocabularyId);
        Assert.Equal(bad, e.Value);
        Assert.Null(e.TokenIndex);
        Assert.Contains($"vocabulary id {at}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(NonFiniteLogits.Injections), MemberType = typeof(NonFiniteLogits))]
    public void Greedy_and_sampling_refuse_a_non_finite_logit_naming_the_token(float bad, int at)
    {
        foreach (var options in new[] { new SamplingOptions(), new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.9f, Seed = 5 } })
        {
            var sampler = new TokenSampler(options);
            sampler.Next(Logits());
            sampler.Next(Logits());

            var e = Assert.Throws<NonFiniteLogitException>(() => sampler.Next(Logits(bad, at)));

            Assert.Equal(at, e.VocabularyId);
            Assert.Equal(2, e.TokenIndex);
            Assert.StartsWith("The model produced a non-finite logit at token 2:", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ArgMax_is_the_first_largest_value_wherever_it_lies()
    {
        for (var length = 1; length <= 70; length++)
        {
            for (var at = 0; at < length; at++)
            {
                var v = Enumerable.Range(0, length).Select(i => -1f - (i % 7)).ToArray();
                v[at] = 3f;
                v[length - 1 - ((length - 1 - at) / 2)] = 3f; // a tie at or after it: the first must win
                Assert.Equal(at, TokenSampler.ArgMax(v));
            }
        }
    }

    [Fact]
    public void ArgMax_allocates_nothing()
    {
        var logits = Logits();
        TokenSampler.ArgMax(logits);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            TokenSampler.ArgMax(logits);
        }

        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    [Fact]
    public void ArgMax_of_no_logits_is_an_argument_error() =>
        Assert.Throws<ArgumentException>(() => TokenSampler.ArgMax([]));
}
