using KvFusion.Engine.Tokenization;
using KvFusion.Engine.Transformer;

namespace KvFusion.Engine.Generation;

/// <summary>
/// The sampling side of one generation, apart from the compute: given the next-token logits it picks the token,
/// decides whether generation goes on, and produces the text. <see cref="TextGenerator"/> drives it with its own
/// session's decode steps; a batch scheduler drives many of them with one batched step, so a sequence gets the same
/// tokens either way.
/// </summary>
public sealed class TokenGeneration
{
    private readonly SamplingOptions _options;
    private readonly GenerationStats? _stats;
    private readonly TokenSampler _sampler;
    private readonly IReadOnlyList<int> _stops;
    private readonly IncrementalDecoder? _decoder;
    private int _index;
    private bool _ended;

    /// <summary>Starts a generation of <paramref name="model"/>'s tokens with these options.</summary>
    public TokenGeneration(TransformerModel model, SamplingOptions options, GenerationStats? stats = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _stats = stats;
        _sampler = new TokenSampler(options);
        _stops = options.StopTokens ?? model.Config.EosTokenIds;
        _decoder = model.Tokenizer is { } tok ? new IncrementalDecoder(tok) : null;
    }

    /// <summary>The token to decode next, after <see cref="Advance"/> returned true.</summary>
    public int NextInput { get; private set; }

    /// <summary>Whether the generation has ended (<see cref="GenerationStats.FinishReason"/> says why).</summary>
    public bool Ended => _ended;

    /// <summary>
    /// Samples from <paramref name="logits"/> and appends what to emit to <paramref name="emitted"/> (the token, and at
    /// the end any text still held back). Returns true when <see cref="NextInput"/> should be decoded and its logits
    /// passed to the next call; false when the generation ended.
    /// </summary>
    /// <param name="logits">The next-token logits.</param>
    /// <param name="cacheFull">Whether the sequence's cache has no slot for another token.</param>
    /// <param name="emitted">Receives the tokens to emit, in order.</param>
    /// <exception cref="NonFiniteLogitException">The model produced a NaN or infinite logit.</exception>
    public bool Advance(ReadOnlySpan<float> logits, bool cacheFull, ICollection<GeneratedToken> emitted)
    {
        ArgumentNullException.ThrowIfNull(emitted);
        if (_ended)
        {
            throw new InvalidOperationException("The generation has ended.");
        }

        var i = _index++;
        var next = _sampler.Next(logits);
        if (Contains(_stops, next))
        {
            return End(FinishReason.Stop);
        }

        _stats?.GeneratedTokens = i + 1;
        emitted.Add(new GeneratedToken(next, _decoder?.Add(next) ?? string.Empty, i));
        if (i + 1 == _options.MaxTokens)
        {
            if (_decoder is not null && _decoder.Flush() is { Length: > 0 } rest)
            {
                emitted.Add(new GeneratedToken(-1, rest, _options.MaxTokens));
            }

            return End(FinishReason.Length);
        }

        if (cacheFull)
        {
            return End(FinishReason.ContextFull);
        }

        NextInput = next;
        return true;
    }

    private bool End(FinishReason reason)
    {
        _ended = true;
        _stats?.FinishReason = reason;
        return false;
    }

    private static bool Contains(IReadOnlyList<int> list, int value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == value)
            {
                return true;
            }
        }

        return false;
    }
}
