namespace KvFusion.Benchmarks;

/// <summary>Medians of one engine for one (threads, prompt length) cell. Decode is null when there were no decode steps.</summary>
internal sealed record EngineSummary(double PrefillTokensPerSecond, double TtftMilliseconds, double? DecodeTokensPerSecond)
{
    public static EngineSummary From(IReadOnlyList<Measurement> samples, int promptTokens, int decodeSteps) => new(
        Statistics.Median(samples.Select(s => promptTokens / s.PrefillSeconds).ToArray()),
        Statistics.Median(samples.Select(s => s.TtftSeconds * 1000).ToArray()),
        decodeSteps > 0 ? Statistics.Median(samples.Select(s => decodeSteps / s.DecodeSeconds).ToArray()) : null);
}

/// <summary>Both engines for one (threads, prompt length) cell, measured interleaved in the same run.</summary>
internal sealed record ComparisonResult(
    int Threads,
    int PromptTokens,
    int GenTokens,
    int DecodeSteps,
    int Samples,
    EngineSummary Ours,
    EngineSummary LlamaCpp,
    IReadOnlyList<double> PrefillRatioByRound,
    int GreedyAgreedPrefix,
    int GreedyTokens)
{
    /// <summary>Throughput: ours / llama.cpp (&gt; 1 means we are faster).</summary>
    public double? PrefillRatio => Statistics.Ratio(Ours.PrefillTokensPerSecond, LlamaCpp.PrefillTokensPerSecond);

    /// <summary>Throughput: ours / llama.cpp; null when there were no decode steps.</summary>
    public double? DecodeRatio => Statistics.Ratio(Ours.DecodeTokensPerSecond, LlamaCpp.DecodeTokensPerSecond);

    /// <summary>Latency turned around so that &gt; 1 also means we are faster: llama.cpp TTFT / ours.</summary>
    public double? TtftRatio => Statistics.Ratio(LlamaCpp.TtftMilliseconds, Ours.TtftMilliseconds);
}

/// <summary>The parallelism checks before one thread count's rounds (empty for 1 thread).</summary>
internal sealed record ParallelCheck(int Threads, int Round, double Efficiency);
