using System.Runtime.CompilerServices;
using KvFusion.Cache.Tiers;

namespace KvFusion.Cache.Tests.Tiers;

/// <summary>
/// A real in-process tier (host memory underneath) that a test can take down, slow down or hold, to drive the
/// manager's failure handling deterministically. The fault tests against real Redis and RocksDB live in the storage
/// test projects; this one checks the manager's own logic.
/// </summary>
internal sealed class ControllableTier(string name) : IKvTier
{
    private readonly HostMemoryTier _inner = new(new HostMemoryTierOptions { ByteBudget = 1L << 34 });

    public string Name { get; } = name;

    /// <summary>Every operation fails as an unreachable server would.</summary>
    public volatile bool Down;

    /// <summary>Every operation takes this long first (ignoring cancellation, as a stuck client would).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>When set, puts wait for it (a tier that is slow to absorb writes).</summary>
    public SemaphoreSlim? PutGate { get; set; }

    public int Puts;

    public int Gets;

    public HostMemoryTier Inner => _inner;

    public async ValueTask<ReadOnlyMemory<byte>?> GetAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Gets);
        await EnterAsync().ConfigureAwait(false);
        return await _inner.GetAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask PutAsync(TierKey key, ReadOnlyMemory<byte> blob, CancellationToken cancellationToken = default)
    {
        await EnterAsync().ConfigureAwait(false);
        if (PutGate is { } gate)
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        Interlocked.Increment(ref Puts);
        await _inner.PutAsync(key, blob, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> RemoveAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        await EnterAsync().ConfigureAwait(false);
        return await _inner.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> ContainsAsync(TierKey key, CancellationToken cancellationToken = default)
    {
        await EnterAsync().ConfigureAwait(false);
        return await _inner.ContainsAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<TierKey> ListAsync(KvNamespace? ns = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await EnterAsync().ConfigureAwait(false);
        await foreach (var key in _inner.ListAsync(ns, cancellationToken).ConfigureAwait(false))
        {
            yield return key;
        }
    }

    public async ValueTask<KvTierStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default) =>
        (await _inner.GetStatisticsAsync(cancellationToken).ConfigureAwait(false)) with { Tier = Name };

    public ValueTask ProbeAsync(CancellationToken cancellationToken = default) => new(EnterAsync());

    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    /// <summary>Flips one byte of the stored blob in place, as a bad disk or a stray write would.</summary>
    public void Corrupt(TierKey key, int offset)
    {
        Assert.True(_inner.TryPeek(key, out var blob));
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(blob, out var segment);
        segment.Array![offset] ^= 0x5a;
    }

    private async Task EnterAsync()
    {
        if (Delay > TimeSpan.Zero)
        {
            await Task.Delay(Delay).ConfigureAwait(false);
        }

        if (Down)
        {
            throw new IOException($"{Name}: connection refused");
        }
    }
}
