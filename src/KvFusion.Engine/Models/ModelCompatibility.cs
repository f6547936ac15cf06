using System.Globalization;

namespace KvFusion.Engine.Models;

/// <summary>
/// Whether a receiver model may use KV caches a sender model computed (cross-model sharing, DroidSpeak): they must be
/// one family, that is the same architecture, the same shapes and the same tokenizer. Weights may differ (a fine-tune
/// of the same base); that difference is what the receiver's recomputed layers correct.
/// </summary>
public sealed record ModelCompatibility
{
    private ModelCompatibility(bool isCompatible, string? reason)
    {
        IsCompatible = isCompatible;
        Reason = reason;
    }

    /// <summary>True when the receiver may use the sender's caches through sharing.</summary>
    public bool IsCompatible { get; }

    /// <summary>Why not, naming the first setting that differs and both values; null when compatible.</summary>
    public string? Reason { get; }

    /// <summary>The two models are one family.</summary>
    public static ModelCompatibility Compatible { get; } = new(true, null);

    /// <summary>Compares a sender's configuration and tokenizer fingerprint with a receiver's.</summary>
    /// <param name="sender">The configuration of the model that computed the caches.</param>
    /// <param name="senderTokenizer">The sender's tokenizer fingerprint.</param>
    /// <param name="receiver">The configuration of the model that would use them.</param>
    /// <param name="receiverTokenizer">The receiver's tokenizer fingerprint.</param>
    public static ModelCompatibility Check(ModelConfig sender, string senderTokenizer, ModelConfig receiver, string receiverTokenizer)
    {
        ArgumentNullException.ThrowIfNull(sender);
        ArgumentNullException.ThrowIfNull(receiver);
        ArgumentNullException.ThrowIfNull(senderTokenizer);
        ArgumentNullException.ThrowIfNull(receiverTokenizer);
        return Differ("architecture", sender.Architecture, receiver.Architecture)
            ?? Differ("layer count", sender.LayerCount, receiver.LayerCount)
            ?? Differ("hidden size", sender.HiddenSize, receiver.HiddenSize)
            ?? Differ("intermediate size", sender.IntermediateSize, receiver.IntermediateSize)
            ?? Differ("attention heads", sender.HeadCount, receiver.HeadCount)
            ?? Differ("KV heads", sender.KvHeadCount, receiver.KvHeadCount)
            ?? Differ("head dimension", sender.HeadDim, receiver.HeadDim)
            ?? Differ("vocabulary size", sender.VocabSize, receiver.VocabSize)
            ?? Differ("q/k/v bias", sender.QkvBias, receiver.QkvBias)
            ?? Differ("q/k norm", sender.QkNorm, receiver.QkNorm)
            ?? Differ("RoPE", sender.Rope, receiver.Rope)
            ?? (string.Equals(senderTokenizer, receiverTokenizer, StringComparison.Ordinal)
                ? Compatible
                : new ModelCompatibility(false, $"the tokenizers differ (fingerprints {Short(senderTokenizer)} and {Short(receiverTokenizer)}): the same text gives other token ids"));
    }

    /// <summary>Compares two loaded models' configurations and tokenizer fingerprints.</summary>
    public static ModelCompatibility Check(ModelConfig sender, ModelFingerprint senderFingerprint, ModelConfig receiver, ModelFingerprint receiverFingerprint)
    {
        ArgumentNullException.ThrowIfNull(senderFingerprint);
        ArgumentNullException.ThrowIfNull(receiverFingerprint);
        return Check(sender, senderFingerprint.Tokenizer, receiver, receiverFingerprint.Tokenizer);
    }

    private static ModelCompatibility? Differ<T>(string what, T sender, T receiver) =>
        EqualityComparer<T>.Default.Equals(sender, receiver)
            ? null
            : new ModelCompatibility(false, string.Create(CultureInfo.InvariantCulture, $"the {what} differs (sender {sender}, receiver {receiver})"));

    private static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] : fingerprint;
}
