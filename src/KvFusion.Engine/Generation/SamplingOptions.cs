namespace KvFusion.Engine.Generation;

/// <summary>How tokens are chosen and when generation stops.</summary>
public sealed record SamplingOptions
{
    /// <summary>0 is greedy (argmax); higher values flatten the distribution.</summary>
    public float Temperature { get; init; }

    /// <summary>Keep only the k most likely tokens (0: all).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability reaches p (1: all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Seed of the sampler; the same seed, prompt and options give the same tokens.</summary>
    public ulong Seed { get; init; }

    /// <summary>Most tokens to generate.</summary>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Tokens that end generation (not emitted). Null: the model's end-of-sequence ids.</summary>
    public IReadOnlyList<int>? StopTokens { get; init; }

    /// <summary>Throws when an option is out of range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number ≥ 0.");
        }

        if (TopK < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be ≥ 0.");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1].");
        }

        if (MaxTokens < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be ≥ 0.");
        }
    }
}
