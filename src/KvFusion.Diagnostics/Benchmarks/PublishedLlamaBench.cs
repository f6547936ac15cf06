using KvFusion.Engine.Models;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>llama-bench's tokens/s at one thread count, as published in <c>shared/anchors/cpu.md</c>.</summary>
/// <param name="Threads">Thread count.</param>
/// <param name="Pp128">Prefill of 128 tokens.</param>
/// <param name="Pp512">Prefill of 512 tokens.</param>
/// <param name="Pp2048">Prefill of 2048 tokens.</param>
/// <param name="Tg128">Decode of 128 tokens from an almost empty context.</param>
public sealed record LlamaBenchRow(int Threads, double Pp128, double Pp512, double Pp2048, double Tg128)
{
    /// <summary>The ppN cell for this prompt length, when cpu.md has one.</summary>
    public double? Prefill(int promptTokens) => promptTokens switch
    {
        128 => Pp128,
        512 => Pp512,
        2048 => Pp2048,
        _ => null,
    };
}

/// <summary>The published llama-bench numbers of one model of cpu.md, and how a model was matched to them.</summary>
/// <param name="Model">The model as cpu.md names it.</param>
/// <param name="MatchedBy">"weights fingerprint" or "shape".</param>
/// <param name="Rows">One row per thread count.</param>
public sealed record PublishedLlamaBench(string Model, string MatchedBy, IReadOnlyList<LlamaBenchRow> Rows)
{
    /// <summary>Printed wherever these numbers appear, so nobody mistakes them for a measurement of this run.</summary>
    public const string Label = "published llama-bench (anchors/cpu.md, other run)";

    /// <summary>What the numbers are, for the table's footnote and the JSON.</summary>
    public const string Source =
        "llama.cpp c392e50 built with -march=native, llama-bench, F16 weights and KV, no flash attention, medians of 30 samples, on the 2-core EPYC dev/CI machine at another time; not measured in this run and never divided into ours";

    // BLAKE3 of tiny-pydocs/model.safetensors (`b3sum model.safetensors`), the checkpoint the cpu.md GGUF was
    // converted from: a folder name says nothing about its weights, the fingerprint does.
    private const string TinyPydocsWeights = "9fbfee3dc3774d3ac0bf47904bf6f028a1fa201c03c39a04284d7bd3edf254c6";

    private static readonly LlamaBenchRow[] TinyPydocs = [new(1, 4509, 2948, 1514, 1309), new(2, 6423, 3874, 2483, 1621)];

    private static readonly LlamaBenchRow[] SmolLm2Shape = [new(1, 301, 234, 160, 66), new(2, 521, 367, 281, 81)];

    /// <summary>The row for <paramref name="threads"/>, when cpu.md measured that thread count.</summary>
    public LlamaBenchRow? For(int threads) => Rows.FirstOrDefault(r => r.Threads == threads);

    /// <summary>
    /// The published numbers that apply to a model: tiny-pydocs by the BLAKE3 fingerprint of its weights (the very
    /// checkpoint cpu.md measured), the smollm2-135m shape by shape (cpu.md measured random weights, so throughput is
    /// all that carries over, and it depends on the shape alone). Null for anything else: no anchor rather than a wrong one.
    /// </summary>
    /// <param name="weightsFingerprint"><see cref="ModelFingerprint.Model"/> of the model.</param>
    /// <param name="config">The model's config.</param>
    public static PublishedLlamaBench? Find(string weightsFingerprint, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (string.Equals(weightsFingerprint, TinyPydocsWeights, StringComparison.OrdinalIgnoreCase))
        {
            return new PublishedLlamaBench("tiny-pydocs F16", "weights fingerprint", TinyPydocs);
        }

        return IsSmolLm2Shape(config) ? new PublishedLlamaBench("smollm2-135m shape F16", "shape", SmolLm2Shape) : null;
    }

    // cpu.md: hidden 576, 30 layers, 9 heads, 3 KV heads, head_dim 64, intermediate 1536, vocabulary 49152, tied.
    private static bool IsSmolLm2Shape(ModelConfig c) =>
        c.Architecture == ModelArchitecture.Llama && c.HiddenSize == 576 && c.LayerCount == 30 && c.HeadCount == 9 && c.KvHeadCount == 3
        && c.HeadDim == 64 && c.IntermediateSize == 1536 && c.VocabSize == 49152 && c.TieWordEmbeddings
        && !c.QkvBias && !c.OutputBias && !c.MlpBias && !c.QkNorm;
}
