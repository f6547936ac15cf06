using KvFusion.Engine.Compute;

namespace KvFusion.Engine.Transformer;

/// <summary>The weights of one decoder layer, on the backend. Optional tensors are null when the family has none.</summary>
internal sealed class LayerWeights : IDisposable
{
    /// <summary>RMSNorm before attention.</summary>
    public required DeviceTensor InputNorm { get; init; }

    /// <summary>RMSNorm before the MLP.</summary>
    public required DeviceTensor PostAttentionNorm { get; init; }

    /// <summary>q_proj [heads·head_dim, hidden].</summary>
    public required DeviceTensor Query { get; init; }

    /// <summary>k_proj [kv_heads·head_dim, hidden].</summary>
    public required DeviceTensor Key { get; init; }

    /// <summary>v_proj [kv_heads·head_dim, hidden].</summary>
    public required DeviceTensor Value { get; init; }

    /// <summary>o_proj [hidden, heads·head_dim].</summary>
    public required DeviceTensor Output { get; init; }

    /// <summary>q_proj bias (Qwen2, attention_bias).</summary>
    public DeviceTensor? QueryBias { get; init; }

    /// <summary>k_proj bias.</summary>
    public DeviceTensor? KeyBias { get; init; }

    /// <summary>v_proj bias.</summary>
    public DeviceTensor? ValueBias { get; init; }

    /// <summary>o_proj bias.</summary>
    public DeviceTensor? OutputBias { get; init; }

    /// <summary>Per-head q RMSNorm weight [head_dim] (Qwen3).</summary>
    public DeviceTensor? QueryNorm { get; init; }

    /// <summary>Per-head k RMSNorm weight [head_dim] (Qwen3).</summary>
    public DeviceTensor? KeyNorm { get; init; }

    /// <summary>gate_proj [intermediate, hidden].</summary>
    public required DeviceTensor Gate { get; init; }

    /// <summary>up_proj [intermediate, hidden].</summary>
    public required DeviceTensor Up { get; init; }

    /// <summary>down_proj [hidden, intermediate].</summary>
    public required DeviceTensor Down { get; init; }

    /// <summary>gate_proj bias (mlp_bias).</summary>
    public DeviceTensor? GateBias { get; init; }

    /// <summary>up_proj bias (mlp_bias).</summary>
    public DeviceTensor? UpBias { get; init; }

    /// <summary>down_proj bias (mlp_bias).</summary>
    public DeviceTensor? DownBias { get; init; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in new[] { InputNorm, PostAttentionNorm, Query, Key, Value, Output, QueryBias, KeyBias, ValueBias, OutputBias, QueryNorm, KeyNorm, Gate, Up, Down, GateBias, UpBias, DownBias })
        {
            t?.Dispose();
        }
    }
}
