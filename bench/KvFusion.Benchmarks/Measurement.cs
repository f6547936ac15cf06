namespace KvFusion.Benchmarks;

/// <summary>One timed run: prefill of the prompt, time to first token, then the greedy decode steps.</summary>
internal readonly record struct Measurement(double PrefillSeconds, double TtftSeconds, double DecodeSeconds);

/// <summary>An engine under test, set up for one thread count. Each call is a fresh sequence (empty KV cache).</summary>
internal interface IBenchEngine : IDisposable
{
    /// <summary>Prefills <paramref name="prompt"/> in one go, takes the argmax, then decodes <paramref name="decodeSteps"/> tokens greedily.</summary>
    Measurement Measure(int[] prompt, int decodeSteps, CancellationToken cancellationToken);

    /// <summary>
    /// The same work untimed, returning the greedy tokens (the argmax after the prompt, then after each decode step):
    /// a cross-check that both engines compute the same model, so the timings compare like with like.
    /// </summary>
    int[] Greedy(int[] prompt, int decodeSteps, CancellationToken cancellationToken);
}
