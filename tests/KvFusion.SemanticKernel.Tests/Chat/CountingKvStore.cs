using System.Collections.Concurrent;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;

namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>A real store that counts, per chunk id, the entries read and written through it.</summary>
public sealed class CountingKvStore(IKvStore inner) : IKvStore
{
    private readonly ConcurrentDictionary<string, int> _reads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _writes = new(StringComparer.Ordinal);

    /// <summary>Chunk entries read (found), by chunk id.</summary>
    public IReadOnlyDictionary<string, int> ChunkReads => _reads;

    /// <summary>Chunk entries written, by chunk id.</summary>
    public IReadOnlyDictionary<string, int> ChunkWrites => _writes;

    public void Reset()
    {
        _reads.Clear();
        _writes.Clear();
    }

    public async ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        var entry = await inner.GetAsync(key, cancellationToken);
        if (entry is not null && key.Kind == CacheEntryKind.Chunk)
        {
            _reads.AddOrUpdate(key.Id, 1, (_, n) => n + 1);
        }

        return entry;
    }

    public ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default)
    {
        if (entry.Key.Kind == CacheEntryKind.Chunk)
        {
            _writes.AddOrUpdate(entry.Key.Id, 1, (_, n) => n + 1);
        }

        return inner.PutAsync(entry, cancellationToken);
    }

    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.RemoveAsync(key, cancellationToken);

    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) => inner.ContainsAsync(key, cancellationToken);
}
