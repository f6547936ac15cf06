using System.Diagnostics;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>Decode throughput of one batch width.</summary>
/// <param name="Sequences">Sequences decoded per step.</param>
/// <param name="Context">Tokens each sequence holds before the measured steps.</param>
/// <param name="Steps">Measured steps.</param>
/// <param name="StepMs">Median step time (ms).</param>
/// <param name="StepMsMin">Fastest step (ms).</param>
/// <param name="StepMsMax">Slowest step (ms).</param>
public sealed record BatchDecodeResult(int Sequences, int Context, int Steps, double StepMs, double StepMsMin, double StepMsMax)
{
    /// <summary>Tokens decoded per second, all sequences together (median step).</summary>
    public double TokensPerSecond => Sequences * 1000.0 / StepMs;
}

/// <summary>
/// Decode steps of several sequences through one <see cref="SequenceBatch"/>, against single-sequence decode
/// (<see cref="InferenceSession.Decode"/>, the path without batching) measured in the same run: what continuous batching
/// gains when decode is bound by reading the weights.
/// </summary>
public static class BatchDecodeBenchmark
{
    /// <summary>The single-sequence baseline: <paramref name="steps"/> plain decode steps after a prompt of <paramref name="context"/> tokens.</summary>
    public static BatchDecodeResult MeasureSolo(TransformerModel model, int context, int steps, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var session = model.CreateSession(context + steps + 1);
        var logits = new float[model.Config.VocabSize];
        session.Prefill(EngineBenchmark.SyntheticPrompt(context, model.Config.VocabSize), logits, cancellationToken: cancellationToken);
        var times = new double[steps];
        for (var i = 0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var start = Stopwatch.GetTimestamp();
            session.Decode(Token(i, model.Config.VocabSize), logits);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return Summarize(1, context, times);
    }

    /// <summary><paramref name="steps"/> batched steps of <paramref name="sequences"/> sequences, each after a prompt of <paramref name="context"/> tokens.</summary>
    public static BatchDecodeResult MeasureBatch(TransformerModel model, int sequences, int context, int steps, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        var sessions = new InferenceSession[sequences];
        try
        {
            var logits = new float[model.Config.VocabSize];
            for (var s = 0; s < sequences; s++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                sessions[s] = model.CreateSession(context + steps + 1);
                sessions[s].Prefill(EngineBenchmark.SyntheticPrompt(context, model.Config.VocabSize), logits, cancellationToken: cancellationToken);
            }

            using var batch = new SequenceBatch(model, sequences, sequences);
            var times = new double[steps];
            for (var i = 0; i < steps; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var start = Stopwatch.GetTimestamp();
                batch.Clear();
                for (var s = 0; s < sequences; s++)
                {
                    batch.Add(sessions[s], [Token(i + s, model.Config.VocabSize)]);
                }

                batch.Run();
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }

            return Summarize(sequences, context, times);
        }
        finally
        {
            foreach (var s in sessions)
            {
                s?.Dispose();
            }
        }
    }

    private static int Token(int i, int vocabulary) => (int)((i * 2654435761L) % Math.Min(vocabulary, 256));

    private static BatchDecodeResult Summarize(int sequences, int context, double[] times)
    {
        var sorted = (double[])times.Clone();
        Array.Sort(sorted);
        return new BatchDecodeResult(sequences, context, times.Length, sorted[sorted.Length / 2], sorted[0], sorted[^1]);
    }
}
