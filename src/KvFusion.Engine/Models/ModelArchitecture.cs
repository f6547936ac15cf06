namespace KvFusion.Engine.Models;

/// <summary>The decoder families the engine runs. They differ only in a few switches (see <see cref="ModelConfig"/>).</summary>
public enum ModelArchitecture
{
    /// <summary>LlamaForCausalLM (incl. Llama 3 RoPE scaling).</summary>
    Llama,

    /// <summary>MistralForCausalLM.</summary>
    Mistral,

    /// <summary>Qwen2ForCausalLM: q/k/v projections with bias.</summary>
    Qwen2,

    /// <summary>Qwen3ForCausalLM: per-head RMSNorm on q and k, explicit head_dim.</summary>
    Qwen3,
}
