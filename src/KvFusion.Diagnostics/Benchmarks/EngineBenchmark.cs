using System.Diagnostics;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>One prompt length's result of <see cref="EngineBenchmark"/> (medians over the measured runs).</summary>
/// <param name="PromptTokens">Prompt length.</param>
/// <param name="GenTokens">Greedy decode steps after the prompt.</param>
/// <param name="PrefillTokensPerSecond">Median prefill throughput.</param>
/// <param name="DecodeTokensPerSecond">Median decode throughput (0 without decode steps).</param>
/// <param name="TtftMilliseconds">Median time to first token.</param>
/// <param name="Runs">Measured runs.</param>
/// <param name="PrefillTokensPerSecondMin">Slowest run's prefill throughput.</param>
/// <param name="PrefillTokensPerSecondMax">Fastest run's prefill throughput.</param>
/// <param name="PrefillFlops">FLOPs of one prefill of the prompt (<see cref="ForwardFlops.Prefill"/>).</param>
public sealed record EngineBenchmarkResult(
    int PromptTokens,
    int GenTokens,
    double PrefillTokensPerSecond,
    double DecodeTokensPerSecond,
    double TtftMilliseconds,
    int Runs,
    double PrefillTokensPerSecondMin,
    double PrefillTokensPerSecondMax,
    double PrefillFlops)
{
    /// <summary>Median prefill throughput in TFLOP/s, counting the work the forward pass does (<see cref="ForwardFlops"/>).</summary>
    public double PrefillTflops => PrefillFlops * PrefillTokensPerSecond / PromptTokens / 1e12;
}

/// <summary>
/// Measures prefill throughput, time to first token and decode throughput of the engine on synthetic prompts
/// (deterministic token ids), median of several runs after a warm-up.
/// </summary>
public static class EngineBenchmark
{
    /// <summary>A deterministic prompt of <paramref name="length"/> ordinary token ids (no id below 16, where specials live).</summary>
    public static int[] SyntheticPrompt(int length, int vocabSize, ulong seed = 42)
    {
        var ids = new int[length];
        var state = seed;
        var span = Math.Max(1, Math.Min(vocabSize, 32000) - 16);
        for (var i = 0; i < length; i++)
        {
            state = (state * 6364136223846793005UL) + 1442695040888963407UL;
            ids[i] = 16 + (int)((state >> 33) % (ulong)span);
        }

        return ids;
    }

    /// <summary>Runs one measurement: a fresh prefill of the prompt, then <paramref name="genTokens"/> greedy decode steps.</summary>
    /// <returns>Prefill seconds, TTFT seconds, decode seconds.</returns>
    public static (double Prefill, double Ttft, double Decode) MeasureOnce(InferenceSession session, int[] prompt, int genTokens, CancellationToken cancellationToken = default)
    {
        var logits = new float[session.Model.Config.VocabSize];
        session.Reset();
        var start = Stopwatch.GetTimestamp();
        session.Prefill(prompt, logits, cancellationToken: cancellationToken);
        var prefill = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var next = TokenSampler.ArgMax(logits);
        var ttft = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var decodeStart = Stopwatch.GetTimestamp();
        for (var i = 0; i < genTokens; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            session.Decode(next, logits);
            next = TokenSampler.ArgMax(logits);
        }

        var decode = Stopwatch.GetElapsedTime(decodeStart).TotalSeconds;
        return (prefill, ttft, decode);
    }

    /// <summary>Summarizes the runs of one prompt length of a model with <paramref name="config"/>.</summary>
    public static EngineBenchmarkResult Summarize(ModelConfig config, int promptTokens, int genTokens, IReadOnlyList<(double Prefill, double Ttft, double Decode)> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var prefillRates = runs.Select(r => promptTokens / r.Prefill).ToArray();
        var decodeRates = runs.Select(r => genTokens > 0 ? genTokens / r.Decode : 0).ToArray();
        var ttfts = runs.Select(r => r.Ttft * 1000).ToArray();
        return new EngineBenchmarkResult(
            promptTokens, genTokens, Median(prefillRates), Median(decodeRates), Median(ttfts), runs.Count, prefillRates.Min(), prefillRates.Max(),
            ForwardFlops.Prefill(config, promptTokens));
    }

    /// <summary>The median of the values.</summary>
    public static double Median(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
