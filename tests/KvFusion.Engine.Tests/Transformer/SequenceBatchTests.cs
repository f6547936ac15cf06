using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Tests.Support;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Tests.Transformer;

/// <summary>
/// A batch step computes each sequence as it would be computed alone: sequences joining with prompts chunked at any
/// size, decoding side by side and leaving at random steps get the same greedy tokens as solo runs, with logits
/// within float tolerance; bad additions are refused and leave the step usable.
/// </summary>
[Collection(SharedModelsGroup.Name)]
public sealed class SequenceBatchTests(CpuModelFixture fixture)
{
    private const float Tolerance = 2e-3f;

    [SkippableTheory]
    [InlineData("tiny-pydocs", 1)]
    [InlineData("tiny-pydocs", 2)]
    [InlineData("zoo/qwen3-qknorm", 3)]
    [InlineData("zoo/qwen2-bias", 4)]
    public void Sequences_joining_and_leaving_a_batch_at_random_steps_decode_as_they_do_alone(string name, int seed)
    {
        var model = fixture.Model(name);
        var random = new Random(seed);
        var plans = new List<SequencePlan>();
        for (var i = 0; i < 7; i++)
        {
            var prompt = new int[random.Next(1, 90)];
            for (var t = 0; t < prompt.Length; t++)
            {
                prompt[t] = random.Next(model.Config.VocabSize);
            }

            plans.Add(new SequencePlan(prompt, Join: random.Next(0, 12), Decode: random.Next(1, 14), Chunk: random.Next(1, 40)));
        }

        var solo = plans.Select(p => Solo(model, p)).ToList();

        var sessions = plans.Select(p => model.CreateSession(p.Prompt.Length + p.Decode)).ToList();
        try
        {
            var prefilled = new int[plans.Count];
            var tokens = plans.Select(_ => new List<int>()).ToList();
            var logits = plans.Select(_ => new List<float[]>()).ToList();
            using var batch = new SequenceBatch(model, maxRows: 64, maxSequences: plans.Count);
            var entries = new int[plans.Count];
            for (var step = 0; tokens.Where((t, i) => t.Count < plans[i].Decode).Any(); step++)
            {
                Assert.True(step < 1000, "The batch makes no progress.");
                Array.Fill(entries, -1);
                for (var i = 0; i < plans.Count; i++)
                {
                    var p = plans[i];
                    if (step < p.Join || tokens[i].Count == p.Decode)
                    {
                        continue;
                    }

                    if (prefilled[i] < p.Prompt.Length)
                    {
                        var n = Math.Min(Math.Min(p.Chunk, p.Prompt.Length - prefilled[i]), batch.FreeRows);
                        if (n == 0 || batch.Count == batch.MaxSequences)
                        {
                            continue;
                        }

                        var last = prefilled[i] + n == p.Prompt.Length;
                        entries[i] = batch.Add(sessions[i], p.Prompt.AsSpan(prefilled[i], n), logits: last);
                        prefilled[i] += n;
                    }
                    else if (batch.FreeRows > 0 && batch.Count < batch.MaxSequences)
                    {
                        entries[i] = batch.Add(sessions[i], [tokens[i][^1]]);
                    }
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                batch.Run();
                for (var i = 0; i < plans.Count; i++)
                {
                    if (entries[i] >= 0 && prefilled[i] == plans[i].Prompt.Length && sessions[i].Length == plans[i].Prompt.Length + tokens[i].Count)
                    {
                        var l = batch.LogitsOf(entries[i]).ToArray();
                        logits[i].Add(l);
                        tokens[i].Add(ArgMax(l));
                    }
                }

                batch.Clear();
            }

            for (var i = 0; i < plans.Count; i++)
            {
                Assert.Equal(solo[i].Tokens, tokens[i]);
                for (var t = 0; t < logits[i].Count; t++)
                {
                    Assert.True(MaxDifference(solo[i].Logits[t], logits[i][t]) < Tolerance, $"Sequence {i}, token {t}: logits differ by {MaxDifference(solo[i].Logits[t], logits[i][t])}.");
                }
            }
        }
        finally
        {
            sessions.ForEach(s => s.Dispose());
        }
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(17)]
    [InlineData(48)]
    [InlineData(50)]
    [InlineData(96)]
    public void A_prompt_prefilled_in_chunks_of_any_size_equals_it_prefilled_whole(int chunk)
    {
        var model = fixture.Model("tiny-pydocs");
        var random = new Random(chunk);
        var prompt = Enumerable.Range(0, 150).Select(_ => random.Next(model.Config.VocabSize)).ToArray();
        var whole = new float[model.Config.VocabSize];
        using (var session = model.CreateSession(prompt.Length))
        {
            session.Prefill(prompt, whole, chunk: prompt.Length);
        }

        var chunked = new float[model.Config.VocabSize];
        using (var session = model.CreateSession(prompt.Length))
        {
            session.Prefill(prompt, chunked, chunk: chunk);
        }

        Assert.Equal(ArgMax(whole), ArgMax(chunked));
        Assert.True(MaxDifference(whole, chunked) < Tolerance, $"Chunks of {chunk}: logits differ by {MaxDifference(whole, chunked)}.");
        var tail = prompt.Length % chunk;
        if (chunk % CpuBackend.AttentionRowBlock == 0 && tail > CpuGemm.GemvMaxRows)
        {
            // Chunks on the attention's row blocks, each above the GEMV threshold: every row takes the kernels it takes
            // in the whole prompt, so the logits come out bit for bit.
            Assert.Equal(whole, chunked);
        }
    }

    [SkippableFact]
    public void A_step_refuses_bad_additions_and_stays_usable()
    {
        var model = fixture.Model("tiny-pydocs");
        var other = fixture.Model("zoo/qwen2-bias");
        using var a = model.CreateSession(8);
        using var b = model.CreateSession(300);
        using var foreign = other.CreateSession(8);
        using var batch = new SequenceBatch(model, maxRows: 4, maxSequences: 2);

        Assert.Throws<ArgumentException>(() => batch.Add(foreign, [1]));
        Assert.Throws<ArgumentException>(() => batch.Add(a, ReadOnlySpan<int>.Empty));
        using (var full = model.CreateSession(1))
        {
            full.Prefill(new int[full.Cache.Capacity - 1], new float[model.Config.VocabSize]);
            Assert.Throws<ArgumentException>(() => batch.Add(full, [1, 2]));
        }

        Assert.Throws<InvalidOperationException>(() => batch.Add(a, [1, 2, 3, 4, 5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.LogitsOf(0));
        Assert.Throws<InvalidOperationException>(() => batch.Run());

        var first = batch.Add(a, [5, 6], logits: false);
        Assert.Throws<ArgumentException>(() => batch.Add(a, [7]));
        var second = batch.Add(b, [7, 8]);
        Assert.Throws<InvalidOperationException>(() => batch.Add(b, [1]));
        Assert.Equal(4, batch.Rows);

        batch.Run();
        Assert.Throws<InvalidOperationException>(() => batch.Run());
        Assert.Throws<InvalidOperationException>(() => batch.LogitsOf(first));
        Assert.Throws<InvalidOperationException>(() => batch.Add(a, [1]));
        var logits = batch.LogitsOf(second).ToArray();
        Assert.Equal(2, a.Length);
        Assert.Equal(2, b.Length);

        var alone = new float[model.Config.VocabSize];
        using (var solo = model.CreateSession(2))
        {
            solo.Prefill([7, 8], alone);
        }

        Assert.True(MaxDifference(alone, logits) < Tolerance);
        batch.Clear();
        Assert.Equal(0, batch.Count);
        batch.Add(a, [9]);
        batch.Run();
        Assert.Equal(3, a.Length);
    }

    [SkippableFact]
    public void A_token_outside_the_vocabulary_fails_the_step_before_any_sequence_changes()
    {
        var model = fixture.Model("tiny-pydocs");
        using var a = model.CreateSession(8);
        using var b = model.CreateSession(8);
        using var batch = new SequenceBatch(model, maxRows: 8, maxSequences: 2);
        batch.Add(a, [1, 2]);
        batch.Add(b, [model.Config.VocabSize]);
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Run());
        Assert.Equal(0, a.Length);
        Assert.Equal(0, b.Length);
    }

    private static (List<int> Tokens, List<float[]> Logits) Solo(TransformerModel model, SequencePlan plan)
    {
        using var session = model.CreateSession(plan.Prompt.Length + plan.Decode);
        var logits = new float[model.Config.VocabSize];
        session.Prefill(plan.Prompt, logits);
        var tokens = new List<int>();
        var all = new List<float[]>();
        for (var i = 0; i < plan.Decode; i++)
        {
            all.Add(logits.ToArray());
            tokens.Add(ArgMax(logits));
            if (i + 1 < plan.Decode)
            {
                session.Decode(tokens[^1], logits);
            }
        }

        return (tokens, all);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var max = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    private sealed record SequencePlan(int[] Prompt, int Join, int Decode, int Chunk);
}
