using System.Runtime.CompilerServices;
using KvFusion.Engine.Tokenization;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Generation;

/// <summary>One generated token and the text it completes (possibly empty while a character is incomplete).</summary>
/// <param name="Id">Token id.</param>
/// <param name="Text">Newly complete text.</param>
/// <param name="Index">0 for the first generated token.</param>
public readonly record struct GeneratedToken(int Id, string Text, int Index);

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token was produced.</summary>
    Stop,

    /// <summary>MaxTokens were produced.</summary>
    Length,

    /// <summary>The session's cache is full.</summary>
    ContextFull,
}

/// <summary>Streams tokens from a session: prompt prefill, then sampling and decode steps.</summary>
public static class TextGenerator
{
    /// <summary>Prefills <paramref name="prompt"/> into the session and streams the continuation.</summary>
    /// <exception cref="NonFiniteLogitException">While streaming: the model produced a NaN or infinite logit (the message names the token).</exception>
    public static IAsyncEnumerable<GeneratedToken> GenerateAsync(
        InferenceSession session, ReadOnlyMemory<int> prompt, SamplingOptions options, GenerationStats? stats = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        options.Validate();
        if (prompt.IsEmpty)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        }

        var logits = new float[session.Model.Config.VocabSize];
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        session.Prefill(prompt.Span, logits, cancellationToken: cancellationToken);
        stats?.PrefillTime = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        stats?.PromptTokens = prompt.Length;
        return ContinueAsync(session, logits, options, stats, cancellationToken);
    }

    /// <summary>
    /// Streams the continuation of a session whose next-token logits are <paramref name="logits"/> (after a prefill or
    /// a fusion). The array is reused as the decode buffer.
    /// </summary>
    /// <exception cref="NonFiniteLogitException">The model produced a NaN or infinite logit (the message names the token).</exception>
    public static async IAsyncEnumerable<GeneratedToken> ContinueAsync(
        InferenceSession session, float[] logits, SamplingOptions options, GenerationStats? stats = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var generation = new TokenGeneration(session.Model, options, stats);
        var emitted = new List<GeneratedToken>(2);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            emitted.Clear();
            var more = generation.Advance(logits, session.Length >= session.Cache.Capacity, emitted);
            foreach (var token in emitted)
            {
                yield return token;
            }

            if (!more)
            {
                yield break;
            }

            // Decode is compute-bound; yielding keeps the caller's context responsive between tokens.
            await Task.Yield();
            session.Decode(generation.NextInput, logits);
        }
    }
}

/// <summary>Counters of one generation, filled in as it runs.</summary>
public sealed class GenerationStats
{
    /// <summary>Tokens in the prompt (when the generator prefilled it).</summary>
    public int PromptTokens { get; set; }

    /// <summary>Tokens emitted so far.</summary>
    public int GeneratedTokens { get; set; }

    /// <summary>Time of the prompt prefill (when the generator ran it).</summary>
    public TimeSpan PrefillTime { get; set; }

    /// <summary>Why generation ended (valid once the stream completed).</summary>
    public FinishReason FinishReason { get; set; }
}
