using KvFusion.Engine.Tokenization;

namespace KvFusion.Cache.Chunking;

/// <summary>
/// <see cref="ITextTokenizer"/> over the model's own tokenizer. It does not own the tokenizer: whoever loaded it
/// disposes it.
/// </summary>
public sealed class ModelTokenizerAdapter : ITextTokenizer
{
    private readonly ModelTokenizer _tokenizer;

    /// <summary>Wraps <paramref name="tokenizer"/>.</summary>
    public ModelTokenizerAdapter(ModelTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
    }

    /// <inheritdoc />
    public int[] Encode(string text) => _tokenizer.Encode(text);

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> tokens) => _tokenizer.Decode(tokens);
}
