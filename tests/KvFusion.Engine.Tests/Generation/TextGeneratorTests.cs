using KvFusion.Engine.Generation;
using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Generation;

[Collection(SharedModelsGroup.Name)]
public sealed class TextGeneratorTests(CpuModelFixture fixture)
{
    private async Task<(List<int> Ids, string Text, GenerationStats Stats)> Run(int[] prompt, SamplingOptions options, CancellationToken ct = default)
    {
        var model = fixture.Model("tiny-pydocs");
        using var session = model.CreateSession(prompt.Length + options.MaxTokens + 1);
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        var stats = new GenerationStats();
        await foreach (var t in TextGenerator.GenerateAsync(session, prompt, options, stats, ct))
        {
            if (t.Id >= 0)
            {
                ids.Add(t.Id);
            }

            text.Append(t.Text);
        }

        return (ids, text.ToString(), stats);
    }

    private static int[] GoldenPrompt(out int[] expected)
    {
        using var golden = SharedModels.Golden("tiny-pydocs");
        var c = golden.RootElement.GetProperty("cases")[0];
        expected = SharedModels.Ints(c.GetProperty("greedy_next_24"));
        return SharedModels.Ints(c.GetProperty("input_ids"));
    }

    [SkippableFact]
    public async Task Greedy_stream_matches_the_golden_continuation_and_its_text()
    {
        var prompt = GoldenPrompt(out var expected);
        var (ids, text, stats) = await Run(prompt, new SamplingOptions { MaxTokens = 24, StopTokens = [] });
        Assert.Equal(expected, ids);
        Assert.Equal(fixture.Model("tiny-pydocs").Tokenizer!.Decode(expected), text);
        Assert.Equal(FinishReason.Length, stats.FinishReason);
        Assert.Equal(prompt.Length, stats.PromptTokens);
    }

    [SkippableFact]
    public async Task Sampling_is_reproducible_for_a_seed_and_differs_across_seeds()
    {
        var prompt = GoldenPrompt(out _);
        var options = new SamplingOptions { MaxTokens = 32, Temperature = 1.0f, TopP = 0.95f, Seed = 7, StopTokens = [] };
        var a = await Run(prompt, options);
        var b = await Run(prompt, options);
        var c = await Run(prompt, options with { Seed = 8 });
        Assert.Equal(a.Ids, b.Ids);
        Assert.NotEqual(a.Ids, c.Ids);
    }

    [SkippableFact]
    public async Task Top_k_of_one_is_greedy_whatever_the_temperature()
    {
        var prompt = GoldenPrompt(out var expected);
        var (ids, _, _) = await Run(prompt, new SamplingOptions { MaxTokens = 24, Temperature = 1.5f, TopK = 1, Seed = 3, StopTokens = [] });
        Assert.Equal(expected, ids);
    }

    [SkippableFact]
    public async Task A_stop_token_ends_generation_without_being_emitted()
    {
        var prompt = GoldenPrompt(out var expected);
        var stop = expected[5];
        var (ids, _, stats) = await Run(prompt, new SamplingOptions { MaxTokens = 24, StopTokens = [stop] });
        Assert.Equal(expected.TakeWhile(t => t != stop), ids);
        Assert.Equal(FinishReason.Stop, stats.FinishReason);
    }

    [SkippableFact]
    public async Task Cancellation_stops_the_stream()
    {
        var prompt = GoldenPrompt(out _);
        using var cts = new CancellationTokenSource();
        var model = fixture.Model("tiny-pydocs");
        using var session = model.CreateSession(200);
        var count = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var t in TextGenerator.GenerateAsync(session, prompt, new SamplingOptions { MaxTokens = 50, StopTokens = [] }, null, cts.Token))
            {
                if (++count == 3)
                {
                    await cts.CancelAsync();
                }
            }
        });
        Assert.Equal(3, count);
    }

    [SkippableTheory]
    [InlineData(0f)]
    [InlineData(1f)]
    public async Task A_non_finite_logit_ends_the_stream_with_a_typed_error_naming_the_token(float temperature)
    {
        var model = fixture.Model("tiny-pydocs");
        using var session = model.CreateSession(8);
        session.Prefill([16, 17, 18], new float[model.Config.VocabSize]);
        var logits = new float[model.Config.VocabSize];
        logits[100] = float.NaN;
        var emitted = 0;

        var e = await Assert.ThrowsAsync<NonFiniteLogitException>(async () =>
        {
            await foreach (var t in TextGenerator.ContinueAsync(session, logits, new SamplingOptions { Temperature = temperature, MaxTokens = 4, StopTokens = [] }))
            {
                emitted++;
            }
        });

        Assert.Equal(0, emitted);
        Assert.Equal(0, e.TokenIndex);
        Assert.Equal(100, e.VocabularyId);
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 10)]
    [InlineData(0f, -2, 1f, 10)]
    [InlineData(0f, 0, 0f, 10)]
    [InlineData(0f, 0, 1.5f, 10)]
    [InlineData(0f, 0, 1f, -1)]
    public void Invalid_sampling_options_are_rejected(float temperature, int topK, float topP, int maxTokens)
    {
        var options = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MaxTokens = maxTokens };
        Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
    }

    [Fact]
    public void Top_p_excludes_a_tail_that_top_k_keeps_and_that_is_sampled_without_top_p()
    {
        // Two head tokens of e² ≈ 7.39 each and four tail tokens of e⁰ = 1: the head holds 78.7% of the mass, each tail
        // token 5.3%. Top-k 6 keeps everything, so only top-p 0.75 (reached after the second head token) cuts the tail.
        var logits = new float[] { 2f, 0f, 2f, 0f, 0f, 0f };
        const int Draws = 2000;
        var withTopP = Draw(new SamplingOptions { Temperature = 1f, TopK = 6, TopP = 0.75f, Seed = 11 });
        var withoutTopP = Draw(new SamplingOptions { Temperature = 1f, TopK = 6, TopP = 1f, Seed = 11 });

        Assert.Equal(0, Tail(withTopP));
        Assert.True(withTopP[0] > Draws / 3 && withTopP[2] > Draws / 3, $"head draws {withTopP[0]} and {withTopP[2]} of {Draws}");

        // Expected 21.3% of 2000 ≈ 426 (standard deviation ≈ 18); a quarter of that already rules out chance.
        Assert.True(Tail(withoutTopP) > 100, $"only {Tail(withoutTopP)} of {Draws} draws from the tail without top-p");

        int[] Draw(SamplingOptions options)
        {
            var sampler = new TokenSampler(options);
            var counts = new int[logits.Length];
            for (var i = 0; i < Draws; i++)
            {
                counts[sampler.Next(logits)]++;
            }

            return counts;
        }

        static int Tail(int[] counts) => counts[1] + counts[3] + counts[4] + counts[5];
    }
}
