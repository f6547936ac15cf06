namespace KvFusion.Cache.Tiers;

/// <summary>
/// Any tier behind a <see cref="ThrottledLink"/>: blobs read or written cross the link at its rate, and every
/// operation pays its latency. For tests and benchmarks of loading over slow tiers (and for trying a deployment's
/// network before it exists); it owns the inner tier.
/// </summary>
public sealed class ThrottledKvTier(IKvTier inner, ThrottledLink link, string? name = null) : IKvTier
{
    /// <summary>The link blobs cross.</summary>
    public ThrottledLink Link { get; } = link ?? throw new ArgumentNullException(nameof(link));

    /// <inheritdoc />
    /// <remarks>The name given, or the inner tier's (a remote tier simulated over host memory needs its own).</remarks>
    public string Name { get; } = name ?? inner.Name;

    /// <inheritdoc />
    public async ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        var blob = await inner.GetAsync(key, cancellationToken).ConfigureAwait(false);
        await Link.TransferAsync(blob?.Length ?? 0, cancellationToken).ConfigureAwait(false);
        return blob;
    }

    /// <inheritdoc />
    public async ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        await Link.TransferAsync(blob.Length, cancellationToken).ConfigureAwait(false);
        await inner.PutAsync(key, blob, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        await Link.TransferAsync(0, cancellationToken).ConfigureAwait(false);
        return await inner.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        await Link.TransferAsync(0, cancellationToken).ConfigureAwait(false);
        return await inner.ContainsAsync(key, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, CancellationToken cancellationToken = default) =>
        inner.ListAsync(ns, cancellationToken);

    /// <inheritdoc />
    public ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default) =>
        inner.GetStatisticsAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask ProbeAsync(CancellationToken cancellationToken = default)
    {
        await Link.TransferAsync(0, cancellationToken).ConfigureAwait(false);
        await inner.ProbeAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
