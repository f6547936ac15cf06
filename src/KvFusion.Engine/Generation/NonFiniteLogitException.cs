using System.Globalization;
using KvFusion.Engine.Errors;

namespace KvFusion.Engine.Generation;

/// <summary>
/// The model produced a NaN or an infinite logit, so no token can be chosen from it honestly (a NaN compares false
/// with everything, and a scan that skips it returns a token the model never preferred). Raised by
/// <see cref="TokenSampler"/> and so by <see cref="TextGenerator"/>, greedy or sampling alike.
/// </summary>
public sealed class NonFiniteLogitException : KvFusionException
{
    /// <summary>Creates the exception for logit <paramref name="vocabularyId"/> holding <paramref name="value"/>.</summary>
    /// <param name="vocabularyId">Index of the first non-finite logit.</param>
    /// <param name="value">Its value (NaN, +∞ or −∞).</param>
    /// <param name="tokenIndex">Which chosen token it was (0 for the first), when a sampler knows it.</param>
    public NonFiniteLogitException(int vocabularyId, float value, int? tokenIndex = null)
        : base(Describe(vocabularyId, value, tokenIndex))
    {
        VocabularyId = vocabularyId;
        Value = value;
        TokenIndex = tokenIndex;
    }

    /// <summary>Creates the exception with a message of the caller's (prefer the constructor that names the logit).</summary>
    public NonFiniteLogitException(string message)
        : this(message, null)
    {
    }

    /// <summary>Creates the exception with a message and the error behind it.</summary>
    public NonFiniteLogitException(string message, Exception? innerException)
        : base(message, innerException)
    {
        VocabularyId = -1;
        Value = float.NaN;
    }

    /// <summary>Creates the exception without details (prefer the constructor that names the logit).</summary>
    public NonFiniteLogitException()
        : this("The model produced a non-finite logit.")
    {
    }

    /// <summary>Index of the first non-finite logit (-1 when not known).</summary>
    public int VocabularyId { get; }

    /// <summary>Its value: NaN, +∞ or −∞.</summary>
    public float Value { get; }

    /// <summary>Which token of the generation was being chosen (0 for the first), or null from a bare argmax.</summary>
    public int? TokenIndex { get; }

    private static string Describe(int vocabularyId, float value, int? tokenIndex) => string.Create(
        CultureInfo.InvariantCulture,
        $"The model produced a non-finite logit{(tokenIndex is { } t ? $" at token {t}" : string.Empty)}: {Name(value)} for vocabulary id {vocabularyId}. The forward pass overflowed or the weights hold NaN or infinity; no token was chosen.");

    private static string Name(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity";
}
