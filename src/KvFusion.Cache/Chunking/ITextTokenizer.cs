namespace KvFusion.Cache.Chunking;

/// <summary>
/// The two tokenizer operations chunking needs. An interface rather than <see cref="Engine.Tokenization.ModelTokenizer"/>
/// itself, so tests can use a fake that splits characters across tokens on purpose.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Encodes text to token ids, as the model's tokenizer does.</summary>
    int[] Encode(string text);

    /// <summary>
    /// Decodes token ids to text. Bytes of an incomplete UTF-8 character at either end decode to U+FFFD, which is
    /// how the chunker recognises a boundary that splits a character.
    /// </summary>
    string Decode(ReadOnlySpan<int> tokens);
}
