namespace KvFusion.Cuda.Kernels;

/// <summary>
/// The kernels the backend launches, by module. Tests check every name against the symbols of the compiled cubins,
/// so a renamed kernel fails in CI wherever NVRTC is installed, not on the GPU.
/// </summary>
public static class KernelNames
{
    /// <summary>Head dimensions the attention kernels are instantiated for.</summary>
    public static IReadOnlyList<int> AttentionHeadDims { get; } = [16, 32, 64, 80, 96, 128, 256];

    // Built once (before ByModule, which reads it): attention runs on every layer of every step, and must not format names each time.
    private static readonly Dictionary<int, (string Prefill, string Decode, string Combine, string KeyWeights)> AttentionByHeadDim = BuildAttention();

    /// <summary>Every kernel name per module.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ByModule { get; } = Build();

    /// <summary>The names of the attention kernels for one head dimension.</summary>
    /// <exception cref="NotSupportedException">No attention kernels are instantiated for <paramref name="headDim"/>.</exception>
    public static (string Prefill, string Decode, string Combine, string KeyWeights) Attention(int headDim) =>
        AttentionByHeadDim.TryGetValue(headDim, out var names)
            ? names
            : throw new NotSupportedException($"The CUDA attention kernels support head dims {string.Join(", ", AttentionHeadDims)}; the model uses {headDim}.");

    private static Dictionary<int, (string, string, string, string)> BuildAttention()
    {
        var byHeadDim = new Dictionary<int, (string, string, string, string)>();
        foreach (var hd in AttentionHeadDims)
        {
            byHeadDim[hd] = ($"attention_prefill_hd{hd}", $"attention_decode_hd{hd}", $"attention_combine_hd{hd}", $"attention_key_weights_hd{hd}");
        }

        return byHeadDim;
    }

    private static Dictionary<string, IReadOnlyList<string>> Build()
    {
        var attention = new List<string>();
        foreach (var hd in AttentionHeadDims)
        {
            var (p, d, c, k) = Attention(hd);
            attention.AddRange([p, d, c, k]);
        }

        return new Dictionary<string, IReadOnlyList<string>>
        {
            ["attention"] = attention,
            ["elementwise"] =
            [
                "embed_f32", "embed_f16", "embed_bf16", "convert_f32_to_f16", "convert_f32_to_bf16", "convert_f16_to_f32",
                "convert_bf16_to_f32", "silu_multiply", "add_inplace", "add_bias_f32", "add_bias_f16", "add_bias_bf16",
                "gather_rows_b32", "gather_rows_b16", "scatter_to_cache", "gather_from_cache", "rope_apply", "import_half_to_cache",
            ],
            ["norm"] = ["rms_norm_f32", "rms_norm_f16", "rms_norm_bf16", "rms_norm_heads_f32", "rms_norm_heads_f16", "rms_norm_heads_bf16"],
            ["selection"] = ["cache_deviation", "topk_select"],
        };
    }
}
