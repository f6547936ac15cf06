using KvFusion.Engine.Models;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>
/// Floating-point operations (a multiply-add is 2) of the engine's forward pass as ForwardPass runs it: per layer the
/// seven projection GEMMs (q, k, v, o, gate, up, down: 2 × in × out per row), causal attention (QKᵀ and PV, each
/// 2 × head_dim per query head and visible key, a row at position p seeing p + 1 keys), and the output head only for
/// the rows whose logits are computed (prefill: the last row; decode: its one row). The embedding lookup is a copy and
/// counts nothing; norms, RoPE, softmax, SiLU, biases and residuals are O(hidden) per row and are left out. This is the
/// count behind every FLOP/s figure the benchmarks print, instead of 2 × parameters per token, which charges the
/// embedding table and the output head to every prompt token and leaves attention out.
/// </summary>
public static class ForwardFlops
{
    /// <summary>The seven projection GEMMs of one row through all layers.</summary>
    public static double ProjectionsPerRow(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        double h = config.HiddenSize, q = config.QueryWidth, kv = config.KvWidth, i = config.IntermediateSize;
        var perLayer = 2 * ((h * q) + (2 * h * kv) + (q * h) + (2 * h * i) + (i * h));
        return perLayer * config.LayerCount;
    }

    /// <summary>
    /// Attention of <paramref name="rows"/> consecutive rows at positions <paramref name="firstPosition"/> onwards
    /// through all layers, over the causal context each row sees (its own and all earlier positions).
    /// </summary>
    public static double Attention(ModelConfig config, long firstPosition, long rows)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegative(firstPosition);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);

        // Σ over p = first .. first + rows − 1 of (p + 1) visible keys.
        var keys = (rows * (double)firstPosition) + (rows * (rows + 1) / 2.0);

        // QKᵀ and PV: 2 × head_dim each per query head and key, so 4 × heads × head_dim = 4 × query width.
        return 4.0 * config.QueryWidth * keys * config.LayerCount;
    }

    /// <summary>The output head (lm_head) of one row.</summary>
    public static double HeadPerRow(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return 2.0 * config.HiddenSize * config.VocabSize;
    }

    /// <summary>
    /// A prefill of <paramref name="tokens"/> tokens appended after <paramref name="firstPosition"/> cached ones, with
    /// logits for the last token only (InferenceSession.Prefill; chunking changes none of it).
    /// </summary>
    public static double Prefill(ModelConfig config, int tokens, int firstPosition = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        return (tokens * ProjectionsPerRow(config)) + Attention(config, firstPosition, tokens) + HeadPerRow(config);
    }

    /// <summary>One decode step of the token at <paramref name="position"/>, with its logits.</summary>
    public static double DecodeStep(ModelConfig config, int position) =>
        ProjectionsPerRow(config) + Attention(config, position, 1) + HeadPerRow(config);
}
