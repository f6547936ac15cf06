using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.SelfTest;

/// <summary>One fusion exactness check: a mode that must reproduce full prefill, on one backend.</summary>
/// <param name="Check">What is compared.</param>
/// <param name="MaxAbsError">Largest logit difference from full prefill.</param>
/// <param name="Tolerance">Largest difference accepted.</param>
/// <param name="GreedyMatches">Whether the greedy continuation equals full prefill's.</param>
/// <param name="Detail">What went wrong, if anything.</param>
public sealed record FusionCheckResult(string Check, double MaxAbsError, double Tolerance, bool GreedyMatches, string? Detail)
{
    /// <summary>Whether the check ran, stayed within tolerance and reproduced the greedy continuation.</summary>
    public bool Passed => Detail is null && MaxAbsError <= Tolerance && GreedyMatches;
}

/// <summary>
/// The exactness checks of the fusion tests, runnable on any backend: blend at ratio 1 (recomputing from layer 0)
/// equals full prefill; prefix mode warm (stored 256-token blocks) and reuse of one chunk at position 0 equal full
/// prefill within the fp16 storage error; all with the same greedy continuation.
/// </summary>
public static class FusionSelfCheck
{
    private static readonly string[] Chunks =
    [
        "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.",
        "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.",
        "The with statement is used to wrap the execution of a block with methods defined by a context manager.",
    ];

    private const string Query = "Explain how the json module serializes";
    private const int GreedyTokens = 8;

    /// <summary>Runs every exactness check on the model's backend.</summary>
    public static async Task<IReadOnlyList<FusionCheckResult>> RunAsync(TransformerModel model, CancellationToken cancellationToken)
    {
        var results = new List<FusionCheckResult>();
        using var engine = new FusionEngine(model, new InMemoryKvStore());
        var request = new FusionRequest
        {
            Prefix = "You answer questions about Python.",
            Chunks = [.. Chunks.Select(ChunkInput.FromText)],
            Query = Query,
            ReserveTokens = 16,
        };
        var full = await FuseAsync(engine, request with { Mode = FusionMode.Full }, cancellationToken).ConfigureAwait(false);
        foreach (var criterion in new[] { SelectionCriterion.Deviation, SelectionCriterion.QueryAttention })
        {
            var blend = await FuseAsync(engine, request with { Mode = FusionMode.Blend, Blend = new BlendOptions { Ratio = 1.0, ReuseLayerZero = false, Criterion = criterion } }, cancellationToken).ConfigureAwait(false);
            results.Add(Compare($"blend ratio 1 ({criterion}) = full", full, blend, 1e-3));
        }

        var longPrefix = string.Concat(Enumerable.Repeat("Answer precisely, cite the Python documentation, and keep examples short. ", 12));
        var prefixRequest = request with { Prefix = longPrefix };
        var fullLong = await FuseAsync(engine, prefixRequest with { Mode = FusionMode.Full }, cancellationToken).ConfigureAwait(false);
        _ = await FuseAsync(engine, prefixRequest with { Mode = FusionMode.Prefix }, cancellationToken).ConfigureAwait(false);
        var warm = await FuseAsync(engine, prefixRequest with { Mode = FusionMode.Prefix }, cancellationToken).ConfigureAwait(false);
        results.Add(warm.Report.PrefixBlocksReused >= 1
            ? Compare("prefix mode, warm = full", fullLong, warm, 2e-2)
            : new FusionCheckResult("prefix mode, warm = full", double.NaN, 2e-2, false, "the second request reused no stored prefix block"));

        var single = new FusionRequest { Chunks = [ChunkInput.FromText(Chunks[0])], Query = Query, Sink = SinkKind.None, ReserveTokens = 16 };
        var fullSingle = await FuseAsync(engine, single with { Mode = FusionMode.Full }, cancellationToken).ConfigureAwait(false);
        var reuse = await FuseAsync(engine, single with { Mode = FusionMode.Reuse }, cancellationToken).ConfigureAwait(false);
        results.Add(Compare("reuse of one chunk at position 0 = full", fullSingle, reuse, 2e-2));
        return results;
    }

    private static FusionCheckResult Compare(string name, Fused expected, Fused actual, double tolerance)
    {
        var worst = 0.0;
        for (var i = 0; i < expected.Logits.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs((double)expected.Logits[i] - actual.Logits[i]));
        }

        var greedy = expected.Greedy.AsSpan().SequenceEqual(actual.Greedy);
        return new FusionCheckResult(name, worst, tolerance, greedy,
            greedy ? null : $"greedy: expected [{string.Join(' ', expected.Greedy)}], got [{string.Join(' ', actual.Greedy)}]");
    }

    private sealed record Fused(float[] Logits, int[] Greedy, FusionReport Report);

    private static async Task<Fused> FuseAsync(FusionEngine engine, FusionRequest request, CancellationToken cancellationToken)
    {
        using var ctx = await engine.FuseAsync(request, cancellationToken).ConfigureAwait(false);
        var logits = (float[])ctx.Logits.Clone();
        var tokens = new List<int>();
        await foreach (var t in ctx.GenerateAsync(new SamplingOptions { MaxTokens = GreedyTokens, StopTokens = [] }, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (t.Id >= 0)
            {
                tokens.Add(t.Id);
            }
        }

        return new Fused(logits, [.. tokens], ctx.Report);
    }
}
