namespace KvFusion.Cache.Scheduling;

/// <summary>
/// Settings of continuous batching (<see cref="Fusion.FusionEngineOptions.Batching"/>): the decode steps of every
/// running generation share one forward pass, so each step reads the weights once for all of them.
/// </summary>
public sealed record BatchingOptions
{
    /// <summary>Generations one step decodes at most; more take turns, tenant by tenant.</summary>
    public int MaxSequencesPerStep { get; init; } = 64;

    /// <summary>
    /// Prompt tokens one step prefills at most, beside its decode tokens (Sarathi-Serve's chunked prefill): a long
    /// prompt delays running streams by one chunk per step, not by its whole prefill. The default is the chunk of
    /// <see cref="Engine.Transformer.InferenceSession.Prefill"/>, so a prompt is computed exactly as without batching.
    /// </summary>
    public int PrefillChunkTokens { get; init; } = Engine.Transformer.InferenceSession.DefaultPrefillChunk;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range.</exception>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSequencesPerStep, 1, nameof(MaxSequencesPerStep));
        ArgumentOutOfRangeException.ThrowIfLessThan(PrefillChunkTokens, 1, nameof(PrefillChunkTokens));
    }
}
