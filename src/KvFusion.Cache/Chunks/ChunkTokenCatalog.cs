using System.Collections.Concurrent;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Chunks;

/// <summary>
/// The token ids of chunks this engine stored or read, by key, so a chunk named by id can be laid out in a prompt
/// (and its stored level chosen, or it be computed from its tokens) before its KV is read. Bounded by tokens held;
/// the oldest go first. One per engine, so per tenant namespace.
/// </summary>
internal sealed class ChunkTokenCatalog(long maxTokens)
{
    private readonly ConcurrentDictionary<CacheKey, int[]> _tokens = new();
    private readonly ConcurrentQueue<CacheKey> _order = new();
    private long _held;

    /// <summary>Tokens held.</summary>
    public long TokensHeld => Interlocked.Read(ref _held);

    /// <summary>Records a chunk's tokens (a chunk already known stays as it was: its id is a hash of them).</summary>
    public void Add(CacheKey key, int[] tokens)
    {
        if (tokens.Length == 0 || tokens.Length > maxTokens || !_tokens.TryAdd(key, tokens))
        {
            return;
        }

        _order.Enqueue(key);
        Interlocked.Add(ref _held, tokens.Length);
        while (Interlocked.Read(ref _held) > maxTokens && _order.TryDequeue(out var oldest))
        {
            if (_tokens.TryRemove(oldest, out var removed))
            {
                Interlocked.Add(ref _held, -removed.Length);
            }
        }
    }

    /// <summary>The chunk's tokens, when known.</summary>
    public bool TryGet(CacheKey key, out int[] tokens) => _tokens.TryGetValue(key, out tokens!);
}
