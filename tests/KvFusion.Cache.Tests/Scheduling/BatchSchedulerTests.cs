using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Tests.Scheduling;

/// <summary>
/// Continuous batching: generations decoded together give each the tokens it gets alone (greedy and seeded sampling),
/// whatever joins, leaves or is cancelled around it; the batch really is shared; nothing is left running or held.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed class BatchSchedulerTests(TinyModelFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    private static readonly string[] Chunks =
    [
        "The with statement wraps the execution of a block with methods defined by a context manager.",
        "The json module converts Python objects to JSON text and back.",
        "A list comprehension builds a list from an iterable in one expression.",
        "Generators produce values lazily with the yield statement.",
    ];

    private static readonly FusionEngineOptions Solo = new() { Batching = null };

    [SkippableFact]
    public async Task Generations_decoded_together_get_the_tokens_they_get_alone()
    {
        var requests = Enumerable.Range(0, 8).Select(i => (Request: Request(i), Sampling: Sampling(i) with { MaxTokens = 20 + i })).ToList();
        var alone = await AnswersAsync(Solo, requests);

        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var scheduler = engine.Scheduler!;
        var steps = scheduler.Steps;
        var decoded = scheduler.DecodedTokens;
        var together = await Task.WhenAll(requests.Select(async (r, i) =>
        {
            // Half arrive at once, half later: sequences also join a batch already decoding.
            await Task.Delay(i < 4 ? 0 : i * 10);
            return await AnswerAsync(engine, r.Request, r.Sampling);
        }));

        Assert.Equal(alone, together);
        var batchedSteps = scheduler.Steps - steps;
        var batchedTokens = scheduler.DecodedTokens - decoded;
        Assert.True(batchedTokens > batchedSteps, $"{batchedTokens} tokens in {batchedSteps} steps: no step decoded two sequences.");
        Assert.Equal(0, engine.RunningGenerations);
    }

    [SkippableFact]
    public async Task A_long_prompt_prefilled_in_chunks_between_decode_steps_answers_as_alone()
    {
        var request = LongPrompt();
        var sampling = new SamplingOptions { Temperature = 0, MaxTokens = 12, StopTokens = [] };
        var alone = (await AnswersAsync(Solo, [(request, sampling)]))[0];

        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var scheduler = engine.Scheduler!;

        // Streams are decoding when the long prompt arrives: its chunks are computed between their steps.
        var streams = Enumerable.Range(0, 3).Select(i => AnswerAsync(engine, Request(i), Sampling(i) with { MaxTokens = 40 })).ToList();
        await WaitUntilAsync(() => scheduler.Steps > 0);
        var answer = await AnswerAsync(engine, request, sampling);
        await Task.WhenAll(streams);

        Assert.True(fixture.Model.Tokenizer!.Encode(request.Query!).Length > InferenceSession.DefaultPrefillChunk, "the prompt fits one chunk");
        Assert.Equal(alone, answer);
    }

    [SkippableFact]
    public async Task Small_prefill_chunks_give_the_prompt_logits_of_a_whole_prefill_within_tolerance()
    {
        var request = LongPrompt();
        float[] alone;
        await using (var solo = new FusionEngine(fixture.Model, new InMemoryKvStore(), Solo))
        {
            using var context = await solo.FuseAsync(request);
            alone = [.. context.Logits];
        }

        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { Batching = new() { PrefillChunkTokens = 37 } });
        using (var context = await engine.FuseAsync(request))
        {
            var max = alone.Zip(context.Logits, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(max < 2e-3f, $"logits differ by {max}");
            Assert.Equal(Array.IndexOf(alone, alone.Max()), Array.IndexOf(context.Logits, context.Logits.Max()));
        }

        var tokens = fixture.Model.Tokenizer!.Encode(request.Query!).Length;
        Assert.True(engine.Scheduler!.PrefillChunks >= tokens / 37, $"{engine.Scheduler.PrefillChunks} chunks for {tokens} tokens");
    }

    [SkippableFact]
    public async Task Cancelling_one_generation_mid_batch_leaves_the_others_unchanged()
    {
        var requests = Enumerable.Range(0, 4).Select(i => (Request: Request(i), Sampling: Sampling(i) with { MaxTokens = 24 })).ToList();
        var alone = await AnswersAsync(Solo, requests);

        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        using var cancel = new CancellationTokenSource();
        var victim = Task.Run(async () =>
        {
            using var context = await engine.FuseAsync(Request(9));
            var n = 0;
            await foreach (var _ in context.GenerateAsync(Sampling(9) with { MaxTokens = 200 }, null, cancel.Token))
            {
                if (++n == 3)
                {
                    await cancel.CancelAsync();
                }
            }
        });
        var others = requests.Select(r => AnswerAsync(engine, r.Request, r.Sampling)).ToList();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => victim.WaitAsync(Timeout));
        Assert.Equal(alone, await Task.WhenAll(others).WaitAsync(Timeout));
        await WaitUntilAsync(() => engine.RunningGenerations == 0);
    }

    [SkippableFact]
    public async Task A_reader_that_stops_early_takes_its_sequence_out_of_the_batch()
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var sessions = fixture.Model.OpenSessions;
        using (var context = await engine.FuseAsync(Request(0)))
        {
            await foreach (var _ in context.GenerateAsync(new SamplingOptions { MaxTokens = 500, StopTokens = [] }))
            {
                break;
            }
        }

        await WaitUntilAsync(() => engine.RunningGenerations == 0);
        await WaitUntilAsync(() => fixture.Model.OpenSessions == sessions);
    }

    [SkippableFact]
    public async Task Sixty_four_concurrent_requests_with_cancellations_complete_as_alone_and_leave_nothing_held()
    {
        var random = new Random(64);
        var requests = Enumerable.Range(0, 64).Select(i => (Request: Request(i, random.Next(1, 4)), Sampling: Sampling(i) with { MaxTokens = random.Next(1, 20) }, Cancel: random.Next(5) == 0 ? random.Next(0, 6) : -1)).ToList();
        var completed = requests.Where(r => r.Cancel < 0).Select(r => (r.Request, r.Sampling)).ToList();
        var alone = await AnswersAsync(Solo, completed);
        var sessions = fixture.Model.OpenSessions;

        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { Batching = new() { MaxSequencesPerStep = 16 } });
        var runs = requests.Select(async r =>
        {
            using var cancel = new CancellationTokenSource();
            try
            {
                using var context = await engine.FuseAsync(r.Request, cancel.Token);
                var tokens = new List<int>();
                await foreach (var t in context.GenerateAsync(r.Sampling, null, cancel.Token))
                {
                    tokens.Add(t.Id);
                    if (tokens.Count == r.Cancel)
                    {
                        await cancel.CancelAsync();
                    }
                }

                return r.Cancel < 0 || r.Cancel >= tokens.Count ? tokens : null;
            }
            catch (OperationCanceledException) when (r.Cancel >= 0)
            {
                return null;
            }
        }).ToList();

        var answers = await Task.WhenAll(runs).WaitAsync(Timeout);
        var kept = requests.Select((r, i) => (r, answers[i])).Where(x => x.r.Cancel < 0).Select(x => x.Item2!).ToList();
        Assert.Equal(alone, kept);
        await WaitUntilAsync(() => engine.RunningGenerations == 0);
        await WaitUntilAsync(() => fixture.Model.OpenSessions == sessions);
    }

    [SkippableFact]
    public async Task Disposing_the_engine_ends_running_generations_and_refuses_new_ones()
    {
        var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());

        // Room for 1800 tokens: the generation is still decoding when the engine goes.
        using var context = await engine.FuseAsync(Request(0) with { ReserveTokens = 1800 });
        await using var tokens = context.GenerateAsync(new SamplingOptions { MaxTokens = 100_000, StopTokens = [] }).GetAsyncEnumerator();
        Assert.True(await tokens.MoveNextAsync());
        await engine.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            while (await tokens.MoveNextAsync())
            {
            }
        });
        await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in context.GenerateAsync(new SamplingOptions { MaxTokens = 4 }))
            {
            }
        });
    }

    private static FusionRequest LongPrompt() => new()
    {
        Chunks = [],
        Query = string.Join(' ', Enumerable.Repeat(string.Join(' ', Chunks), 12)) + " Summarize.",
        Mode = FusionMode.Full,
        ReserveTokens = 64,
    };

    private static FusionRequest Request(int i, int chunks = 2) => new()
    {
        Chunks = [.. Enumerable.Range(0, chunks).Select(c => ChunkInput.FromText(Chunks[(i + c) % Chunks.Length]))],
        Query = $"Question {i}: what does it do?",
        Mode = (i % 3) switch { 0 => FusionMode.Reuse, 1 => FusionMode.Blend, _ => FusionMode.Full },
        ReserveTokens = 200,
    };

    // Greedy for most; seeded sampling with temperature and top-p for every third, so per-request options are exercised.
    private static SamplingOptions Sampling(int i) => i % 3 == 2
        ? new SamplingOptions { Temperature = 0.8f, TopP = 0.9f, Seed = (ulong)(1000 + i), MaxTokens = 6 + (i % 7), StopTokens = [] }
        : new SamplingOptions { Temperature = 0, MaxTokens = 6 + (i % 7), StopTokens = [] };

    private async Task<List<int>[]> AnswersAsync(FusionEngineOptions options, List<(FusionRequest Request, SamplingOptions Sampling)> requests)
    {
        await using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), options);
        var answers = new List<int>[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            answers[i] = await AnswerAsync(engine, requests[i].Request, requests[i].Sampling);
        }

        return answers;
    }

    private static async Task<List<int>> AnswerAsync(FusionEngine engine, FusionRequest request, SamplingOptions sampling)
    {
        using var context = await engine.FuseAsync(request);
        var tokens = new List<int>();
        await foreach (var t in context.GenerateAsync(sampling))
        {
            tokens.Add(t.Id);
        }

        return tokens;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The condition did not hold in time.");
            await Task.Delay(10);
        }
    }
}
