using KvFusion.Cache.Storage;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Sharing;

/// <summary>
/// Where a <c>share</c> request takes its chunk caches from: the sender model that computed them (only its identity:
/// configuration and fingerprints, not its weights), the store that holds them, and the layers the receiver recomputes.
/// </summary>
public sealed record SharedCacheSource
{
    /// <summary>A name for messages (the sender's folder name, an agent's name).</summary>
    public required string SenderName { get; init; }

    /// <summary>The sender's configuration, checked against the receiver's.</summary>
    public required ModelConfig SenderConfig { get; init; }

    /// <summary>The sender's fingerprints: its chunk ids and stored entries are keyed by them.</summary>
    public required ModelFingerprint SenderFingerprint { get; init; }

    /// <summary>The store holding the sender's caches (its namespace, when the store is namespaced by model).</summary>
    public required IKvStore Store { get; init; }

    /// <summary>The layers the receiver recomputes; none: the sender's K/V everywhere (DroidSpeak's "full reuse").</summary>
    public RecomputeRanges Recompute { get; init; } = RecomputeRanges.None;

    /// <summary>The source for caches <paramref name="sender"/> computed into <paramref name="store"/>.</summary>
    public static SharedCacheSource From(TransformerModel sender, IKvStore store, RecomputeRanges? recompute = null)
    {
        ArgumentNullException.ThrowIfNull(sender);
        ArgumentNullException.ThrowIfNull(store);
        return new SharedCacheSource
        {
            SenderName = Path.GetFileName(Path.TrimEndingDirectorySeparator(sender.Directory)),
            SenderConfig = sender.Config,
            SenderFingerprint = sender.Fingerprint,
            Store = store,
            Recompute = recompute ?? RecomputeRanges.None,
        };
    }
}
