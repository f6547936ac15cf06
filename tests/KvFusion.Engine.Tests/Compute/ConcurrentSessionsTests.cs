using System.Runtime.InteropServices;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Tests.Support;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Tests.Compute;

/// <summary>
/// The backend concurrency contract: sessions on several threads sharing one backend get bit for bit the results
/// they get one at a time. Each session mixes prefill chunks (parallel regions) with decode steps (small-work paths
/// that run as worker 0 on the calling thread), the mix that corrupted results when operations overlapped.
/// </summary>
public sealed class ConcurrentSessionsTests
{
    [SkippableTheory]
    [InlineData("zoo/mistral", 4, 12, 6)]
    [InlineData("zoo/qwen2-bias", 4, 12, 6)]
    [InlineData("zoo/qwen3-qknorm", 4, 12, 6)]
    [InlineData("tiny-pydocs", 4, 24, 5)]
    public void Sessions_run_concurrently_on_one_backend_equal_the_same_sessions_run_one_at_a_time(string name, int sessions, int decodeSteps, int rounds)
    {
        using var backend = new CpuBackend(2);
        using var model = TransformerModel.Load(SharedModels.Path(name), backend);
        var expected = new float[sessions][];
        for (var s = 0; s < sessions; s++)
        {
            expected[s] = RunSession(model, s, decodeSteps);
        }

        var mismatches = 0;
        var failures = new List<string>();
        for (var round = 0; round < rounds; round++)
        {
            var actual = new float[sessions][];
            var errors = new Exception?[sessions];
            using var start = new Barrier(sessions);
            var threads = new Thread[sessions];
            for (var s = 0; s < sessions; s++)
            {
                var index = s;
                threads[s] = new Thread(() =>
                {
                    try
                    {
                        start.SignalAndWait();
                        actual[index] = RunSession(model, index, decodeSteps);
                    }
                    catch (Exception e)
                    {
                        errors[index] = e;
                    }
                })
                {
                    IsBackground = true,
                };
                threads[s].Start();
            }

            foreach (var t in threads)
            {
                // A deadlocked backend fails the test instead of hanging the run.
                Assert.True(t.Join(TimeSpan.FromMinutes(2)), "A session did not finish: the backend deadlocked.");
            }

            for (var s = 0; s < sessions; s++)
            {
                Assert.Null(errors[s]);
                var differing = CountDifferentBits(expected[s], actual[s]);
                if (differing > 0)
                {
                    mismatches++;
                    failures.Add($"round {round} session {s}: {differing} of {expected[s].Length} logits differ");
                }
            }
        }

        Assert.True(mismatches == 0, $"{mismatches} of {rounds * sessions} concurrent sessions differ from the same session run alone: {string.Join("; ", failures)}");
    }

    /// <summary>
    /// One session's work: a prompt prefilled in chunks, then decode steps of fixed tokens (not sampled, so one
    /// wrong step does not change the inputs of the next). Returns every logit computed, in order.
    /// </summary>
    private static float[] RunSession(TransformerModel model, int index, int decodeSteps)
    {
        var vocab = model.Config.VocabSize;
        var random = new Random(1000 + index);
        var promptLength = 40 + (23 * index);
        var prompt = new int[promptLength];
        for (var i = 0; i < prompt.Length; i++)
        {
            prompt[i] = random.Next(vocab);
        }

        var logits = new float[(decodeSteps + 1) * vocab];
        using var session = model.CreateSession(promptLength + decodeSteps);
        session.Prefill(prompt, logits.AsSpan(0, vocab), chunk: 16 + (9 * index));
        for (var step = 0; step < decodeSteps; step++)
        {
            session.Decode(random.Next(vocab), logits.AsSpan((step + 1) * vocab, vocab));
        }

        return logits;
    }

    private static int CountDifferentBits(float[] expected, float[] actual)
    {
        var e = MemoryMarshal.Cast<float, int>(expected);
        var a = MemoryMarshal.Cast<float, int>(actual);
        var count = 0;
        for (var i = 0; i < e.Length; i++)
        {
            if (e[i] != a[i])
            {
                count++;
            }
        }

        return count;
    }
}
