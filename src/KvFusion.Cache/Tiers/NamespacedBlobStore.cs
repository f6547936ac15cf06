using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// One namespace of a tier seen as an <see cref="IKvBlobStore"/>, which is what <see cref="ContainerKvStore"/>
/// encodes into and decodes from: the same tier serves every tenant and model, each through its own view.
/// </summary>
public sealed class NamespacedBlobStore : IKvBlobStore
{
    /// <summary>A view of <paramref name="tier"/>'s entries in <paramref name="ns"/>.</summary>
    public NamespacedBlobStore(IKvTier tier, KvNamespace ns)
    {
        Tier = tier ?? throw new ArgumentNullException(nameof(tier));
        if (ns.Tenant is null)
        {
            throw new ArgumentException("The namespace is empty (default); create it with a tenant and a model fingerprint.", nameof(ns));
        }

        Namespace = ns;
    }

    /// <summary>The tier underneath.</summary>
    public IKvTier Tier { get; }

    /// <summary>The namespace this view reads and writes.</summary>
    public KvNamespace Namespace { get; }

    /// <inheritdoc />
    public ValueTask<ReadOnlyMemory<byte>?> GetAsync(CacheKey key, CancellationToken cancellationToken = default) => Tier.GetAsync(new TierKey(Namespace, key), cancellationToken);

    /// <inheritdoc />
    public ValueTask PutAsync(CacheKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default) => Tier.PutAsync(new TierKey(Namespace, key), blob, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => Tier.RemoveAsync(new TierKey(Namespace, key), cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) => Tier.ContainsAsync(new TierKey(Namespace, key), cancellationToken);
}
