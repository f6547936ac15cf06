namespace KvFusion.Benchmarks;

/// <summary>
/// llama-bench reference numbers for tiny-pydocs F16 on the 2-core EPYC dev/CI machine, copied from
/// <c>shared/anchors/cpu.md</c> (llama.cpp c392e50, -march=native, F16 KV, no flash attention, medians of 30 samples).
/// They are NOT measured in this run: they are printed beside the same-run llama.cpp numbers because LLamaSharp's
/// single-token decode path is much slower than llama-bench's tg128 (cpu.md), so decode needs an outside anchor.
/// Only tiny-pydocs has entries: other models get no anchor rather than a wrong one.
/// </summary>
internal static class LlamaBenchAnchors
{
    /// <summary>The model directory name the numbers belong to.</summary>
    public const string ModelName = "tiny-pydocs";

    /// <summary>Printed wherever an anchor appears, so nobody mistakes it for a measurement.</summary>
    public const string Label = "anchor (llama-bench, cpu.md; not measured in this run)";

    // threads -> (pp128, pp512, pp2048, tg128) tokens/s, from cpu.md's table.
    private static readonly Dictionary<int, (double Pp128, double Pp512, double Pp2048, double Tg128)> TinyPydocsF16 = new()
    {
        [1] = (4509, 2948, 1514, 1309),
        [2] = (6423, 3874, 2483, 1621),
    };

    /// <summary>Whether the model directory is the one the anchors were measured on (matched by directory name).</summary>
    public static bool AppliesTo(string modelDirectory) =>
        string.Equals(Path.GetFileName(Path.TrimEndingDirectorySeparator(modelDirectory)), ModelName, StringComparison.Ordinal);

    /// <summary>llama-bench's ppN for this thread count and prompt length, when cpu.md has that cell.</summary>
    public static double? Prefill(string modelDirectory, int threads, int promptTokens)
    {
        if (!AppliesTo(modelDirectory) || !TinyPydocsF16.TryGetValue(threads, out var row))
        {
            return null;
        }

        return promptTokens switch
        {
            128 => row.Pp128,
            512 => row.Pp512,
            2048 => row.Pp2048,
            _ => null,
        };
    }

    /// <summary>llama-bench's tg128 (decode from an almost empty context) for this thread count.</summary>
    public static double? Decode(string modelDirectory, int threads) =>
        AppliesTo(modelDirectory) && TinyPydocsF16.TryGetValue(threads, out var row) ? row.Tg128 : null;
}
