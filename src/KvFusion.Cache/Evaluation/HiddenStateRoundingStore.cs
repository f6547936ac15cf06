using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Sharing;
using KvFusion.Cache.Storage;

namespace KvFusion.Cache.Evaluation;

/// <summary>
/// A store that keeps each entry's E-cache at a lower precision and its K/V as given, so an evaluation of share modes
/// measures what precision recomputation from the E-cache needs, apart from the K/V codec.
/// </summary>
public sealed class HiddenStateRoundingStore(IKvStore inner, HiddenStatePrecision precision) : IKvStore
{
    /// <summary>The precision the E-cache is kept at.</summary>
    public HiddenStatePrecision Precision => precision;

    /// <inheritdoc />
    public ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

    /// <inheritdoc />
    public ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return inner.PutAsync(entry.HiddenStates is { } states ? entry.WithHiddenStates(HiddenStateRounding.Round(states, precision)) : entry, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.RemoveAsync(key, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.ContainsAsync(key, cancellationToken);
}
