using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// The result of a fusion: a session whose cache holds the fused prompt, the next-token logits, and the report.
/// Generate from it, then dispose it.
/// </summary>
public sealed class FusedContext : IDisposable
{
    internal FusedContext(InferenceSession session, float[] logits, FusionReport report, int[] promptTokens)
    {
        Session = session;
        Logits = logits;
        Report = report;
        PromptTokens = promptTokens;
    }

    /// <summary>The session holding the fused KV.</summary>
    public InferenceSession Session { get; }

    /// <summary>Next-token logits after the prompt (updated by decoding).</summary>
    public float[] Logits { get; }

    /// <summary>What the fusion did.</summary>
    public FusionReport Report { get; }

    /// <summary>The fused prompt's token ids (prefix, chunks, query).</summary>
    public IReadOnlyList<int> PromptTokens { get; }

    /// <summary>Streams a continuation of the fused prompt.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(SamplingOptions options, GenerationStats? stats = null, CancellationToken cancellationToken = default) =>
        TextGenerator.ContinueAsync(Session, Logits, options, stats, cancellationToken);

    /// <inheritdoc />
    public void Dispose() => Session.Dispose();
}
