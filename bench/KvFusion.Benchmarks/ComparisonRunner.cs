using System.Globalization;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Models;
using LLama;
using Spectre.Console;

namespace KvFusion.Benchmarks;

/// <summary>
/// Runs both engines interleaved, per thread count: warm-up of each prompt length, then rounds of runs where every
/// run of ours sits next to a run of llama.cpp. cpu.md: the machine's noise (a neighbour taking the second core for
/// ~20 minutes) moves absolute numbers by up to ±30%, so only same-run ratios are meaningful.
/// </summary>
internal sealed class ComparisonRunner(BenchmarkSettings settings, IAnsiConsole diagnostics)
{
    // A pause between runs so the other engine's worker threads (our pool spins ~20k iterations; libgomp spin-waits
    // after each parallel region) have gone to sleep before the next timed region starts. Not timed.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(50);

    public IReadOnlyList<ParallelCheck> ParallelChecks => _checks;

    /// <summary>cpu.md's llama-bench numbers for this model, matched by weights fingerprint or shape (null: none apply).</summary>
    public PublishedLlamaBench? Published { get; private set; }

    private readonly List<ParallelCheck> _checks = [];

    public IReadOnlyList<ComparisonResult> Run(CancellationToken cancellationToken)
    {
        var config = ModelConfig.Load(settings.ModelDirectory);
        var context = config.MaxPositionEmbeddings;
        var longest = settings.PromptTokens.Max();
        if (longest > context)
        {
            throw new BenchmarkException($"A prompt of {longest} tokens exceeds the model's context ({context}).");
        }

        // Decode continues after the prompt, so its steps are capped by the room left; both engines get the same count.
        var steps = settings.PromptTokens.ToDictionary(p => p, p => Math.Min(settings.GenTokens, context - p));
        var capacity = settings.PromptTokens.Max(p => p + steps[p]);

        // The same token ids go to both engines: the GGUF was converted from these safetensors with the same vocabulary.
        var prompts = settings.PromptTokens.ToDictionary(p => p, p => EngineBenchmark.SyntheticPrompt(p, config.VocabSize));

        // Weights are loaded once and shared; a context per thread count carries the thread setting.
        using var weights = LLamaWeights.LoadFromFile(LlamaCppEngine.CreateParameters(settings.GgufPath, settings.Threads[0], context, longest));
        if (weights.Vocab.Count != config.VocabSize)
        {
            throw new BenchmarkException($"The GGUF's vocabulary ({weights.Vocab.Count}) differs from the model's ({config.VocabSize}): the token ids would not mean the same.");
        }

        var results = new List<ComparisonResult>();
        diagnostics.Progress()
            .AutoRefresh(false) // no renderer thread competing for the two cores during timed regions
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(progress =>
            {
                foreach (var threads in settings.Threads)
                {
                    var perLength = (1 + (settings.Rounds * settings.Runs)) * 2;
                    var task = progress.AddTask($"{threads} thread{(threads == 1 ? "" : "s")}", maxValue: perLength * settings.PromptTokens.Count);
                    progress.Refresh();
                    results.AddRange(RunThreadCount(threads, context, longest, capacity, prompts, steps, weights, task, progress, cancellationToken));
                }
            });

        return results;
    }

    private List<ComparisonResult> RunThreadCount(
        int threads, int context, int longest, int capacity, Dictionary<int, int[]> prompts, Dictionary<int, int> steps,
        LLamaWeights weights, ProgressTask task, ProgressContext progress, CancellationToken cancellationToken)
    {
        if (threads > Environment.ProcessorCount)
        {
            diagnostics.MarkupLineInterpolated($"[yellow]warning:[/] {threads} threads on {Environment.ProcessorCount} logical processors: the threads share cores.");
        }

        CheckParallelism(threads, 0);
        using var ours = new KvFusionEngine(settings.ModelDirectory, threads, capacity);
        Published ??= PublishedLlamaBench.Find(ours.Fingerprint.Model, ours.Config);
        using var llama = LlamaCppEngine.Create(weights, settings.GgufPath, threads, context, longest);
        IBenchEngine[] engines = [ours, llama];

        var samples = settings.PromptTokens.ToDictionary(p => p, _ => (Ours: new List<Measurement>(), Llama: new List<Measurement>()));
        var roundRatios = settings.PromptTokens.ToDictionary(p => p, _ => new List<double>());

        // One warm-up per engine and length: JIT, page faults of the mapped weights, llama.cpp's graph allocation.
        foreach (var length in settings.PromptTokens)
        {
            task.Description = $"{threads}T warm-up {length}";
            progress.Refresh();
            foreach (var engine in engines)
            {
                engine.Measure(prompts[length], steps[length], cancellationToken);
                Thread.Sleep(Settle);
                task.Increment(1);
            }
        }

        // Untimed: both engines' greedy tokens for each prompt. Agreement shows they run the same model on the same
        // ids; F16 KV (llama.cpp) against float32 (ours) may flip a near-tie late in a random-token continuation.
        var agreement = new Dictionary<int, int>();
        foreach (var length in settings.PromptTokens)
        {
            var a = ours.Greedy(prompts[length], steps[length], cancellationToken);
            var b = llama.Greedy(prompts[length], steps[length], cancellationToken);
            var same = 0;
            while (same < a.Length && a[same] == b[same])
            {
                same++;
            }

            agreement[length] = same;
            if (same == 0)
            {
                diagnostics.MarkupLineInterpolated(
                    $"[yellow]warning:[/] {threads} threads, prompt {length}: the engines' first greedy tokens differ ({a[0]} vs {b[0]}); are the GGUF and the model directory the same model?");
            }
        }

        Thread.Sleep(Settle);
        for (var round = 0; round < settings.Rounds; round++)
        {
            if (round > 0)
            {
                CheckParallelism(threads, round);
            }

            // Rounds go over all lengths in turn, so a slow stretch of the machine hits every length, not one.
            foreach (var length in settings.PromptTokens)
            {
                task.Description = $"{threads}T round {round + 1}/{settings.Rounds} prompt {length}";
                progress.Refresh();
                var oursRound = new List<Measurement>();
                var llamaRound = new List<Measurement>();
                for (var run = 0; run < settings.Runs; run++)
                {
                    // ABBA order: whoever goes first alternates, so neither engine always follows the other's
                    // cache footprint or gets the fresher moment.
                    var order = run % 2 == 0 ? engines : [llama, ours];
                    foreach (var engine in order)
                    {
                        var m = engine.Measure(prompts[length], steps[length], cancellationToken);
                        (ReferenceEquals(engine, ours) ? oursRound : llamaRound).Add(m);
                        Thread.Sleep(Settle);
                        task.Increment(1);
                        progress.Refresh();
                    }
                }

                samples[length].Ours.AddRange(oursRound);
                samples[length].Llama.AddRange(llamaRound);
                roundRatios[length].Add(
                    Statistics.Median(oursRound.Select(m => length / m.PrefillSeconds).ToArray())
                    / Statistics.Median(llamaRound.Select(m => length / m.PrefillSeconds).ToArray()));
            }
        }

        return settings.PromptTokens.Select(length => new ComparisonResult(
            threads,
            length,
            settings.GenTokens,
            steps[length],
            samples[length].Ours.Count,
            EngineSummary.From(samples[length].Ours, length, steps[length]),
            EngineSummary.From(samples[length].Llama, length, steps[length]),
            roundRatios[length],
            agreement[length],
            steps[length] + 1)).ToList();
    }

    private void CheckParallelism(int threads, int round)
    {
        if (threads < 2)
        {
            return;
        }

        var efficiency = ParallelismProbe.Efficiency(threads);
        _checks.Add(new ParallelCheck(threads, round, efficiency));
        var text = efficiency.ToString("F2", CultureInfo.InvariantCulture);
        if (efficiency < ParallelismProbe.WarningThreshold)
        {
            diagnostics.MarkupLineInterpolated(
                $"[yellow]warning:[/] before {threads}-thread round {round + 1}: parallel efficiency {text} < {ParallelismProbe.WarningThreshold:F1}: the cores are busy elsewhere (cpu.md); {threads}-thread numbers of this round are suspect.");
        }
        else
        {
            diagnostics.MarkupLineInterpolated($"[grey]before {threads}-thread round {round + 1}: parallel efficiency {text}[/]");
        }
    }
}
