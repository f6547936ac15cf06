using KvFusion.Cache.Fusion.Planning;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>What a runner works on for one request: the plan, an empty session sized for it, and the outputs.</summary>
internal sealed class FusionRun
{
    public required FusionPlan Plan { get; init; }

    public required InferenceSession Session { get; init; }

    public required BlendOptions Blend { get; init; }

    /// <summary>Receives the next-token logits after the prompt.</summary>
    public required float[] Logits { get; init; }

    /// <summary>Time per stage, filled in by the runner.</summary>
    public required Dictionary<string, TimeSpan> Stages { get; init; }

    public int LayerCount => Session.Model.Config.LayerCount;

    /// <summary>What <see cref="PrefillAsync"/> runs (set by the engine).</summary>
    public required Func<ReadOnlyMemory<int>, CancellationToken, Task> Prefiller { get; init; }

    /// <summary>
    /// Appends <paramref name="tokens"/> to the session and writes the last one's next-token logits into
    /// <see cref="Logits"/>: with batching, in chunks scheduled between other requests' decode steps (the compute gate
    /// is left meanwhile and held again when it returns); without, at once.
    /// </summary>
    public Task PrefillAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken) => Prefiller(tokens, cancellationToken);
}
