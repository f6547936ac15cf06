using System.Text.Json;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Models;

namespace KvFusion.Diagnostics.Tests.Benchmarks;

public sealed class ForwardFlopsTests
{
    // hidden 8, 2 query heads and 1 KV head of 4, intermediate 12, 2 layers, vocabulary 10.
    private static readonly ModelConfig Small = Parse("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 10, "hidden_size": 8,
         "intermediate_size": 12, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
         "head_dim": 4, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "tie_word_embeddings": true}
        """);

    private static ModelConfig Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return ModelConfig.Parse(doc.RootElement, "test config");
    }

    [Fact]
    public void Prefill_and_decode_match_a_hand_count_for_a_small_config()
    {
        // Per row and layer, multiply-adds: q 8·8 + k 8·4 + v 8·4 + o 8·8 + gate 8·12 + up 8·12 + down 12·8 = 480,
        // so 960 FLOPs, 1920 over both layers.
        Assert.Equal(1920, ForwardFlops.ProjectionsPerRow(Small));

        // Attention per visible key and layer: 2 heads × (QKᵀ 2·4 + PV 2·4) = 32; three rows from position 0 see
        // 1 + 2 + 3 = 6 keys: 6 × 32 × 2 layers = 384.
        Assert.Equal(384, ForwardFlops.Attention(Small, 0, 3));

        // The head of one row: 2 · 8 · 10 = 160, once for the whole prefill.
        Assert.Equal(160, ForwardFlops.HeadPerRow(Small));
        Assert.Equal((3 * 1920) + 384 + 160, ForwardFlops.Prefill(Small, 3));

        // After 5 cached tokens the rows see 6 + 7 + 8 = 21 keys: 21 × 32 × 2 = 1344.
        Assert.Equal((3 * 1920) + 1344 + 160, ForwardFlops.Prefill(Small, 3, firstPosition: 5));

        // Decoding the token at position 4 sees 5 keys: 5 × 64 = 320.
        Assert.Equal(1920 + 320 + 160, ForwardFlops.DecodeStep(Small, 4));
    }

    [Fact]
    public void Prefill_in_pieces_costs_what_it_costs_at_once_except_for_the_extra_heads()
    {
        var whole = ForwardFlops.Prefill(Small, 40);
        var pieces = ForwardFlops.Prefill(Small, 16) + ForwardFlops.Prefill(Small, 24, firstPosition: 16);
        Assert.Equal(whole + ForwardFlops.HeadPerRow(Small), pieces);
    }

    [Fact]
    public void The_engine_benchmark_reports_prefill_tflops_from_this_count()
    {
        // Runs of 2, 1 and 4 ms: the median is 2 ms, so 6304 FLOPs in 2 ms.
        var r = EngineBenchmark.Summarize(Small, 3, 0, [(0.002, 0.002, 0), (0.001, 0.001, 0), (0.004, 0.004, 0)]);

        Assert.Equal(6304, r.PrefillFlops);
        Assert.Equal(6304 / 0.002 / 1e12, r.PrefillTflops, 15);
    }

    [SkippableFact]
    public void Tiny_pydocs_pp128_is_17_percent_below_two_times_the_parameters()
    {
        var config = ModelConfig.Load(SharedModels.Path("tiny-pydocs"));

        // Projections 2 × 786,432 × 6 = 9,437,184 per token; attention 6144 × Σ(p + 1) = 6144 × 8256 = 50,724,864;
        // head 2 × 256 × 4096 = 2,097,152 once.
        Assert.Equal((128 * 9_437_184.0) + 50_724_864 + 2_097_152, ForwardFlops.Prefill(config, 128));

        // 2 × 5,770,496 parameters per token (tied embedding counted once) was the old count.
        var old = 2.0 * 5_770_496 * 128;
        Assert.InRange(old / ForwardFlops.Prefill(config, 128), 1.17, 1.18);
    }
}
