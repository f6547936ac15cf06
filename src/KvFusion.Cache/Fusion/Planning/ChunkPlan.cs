using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>One chunk of a fusion plan: its tokens, store key, cache slot and (once loaded) stored KV.</summary>
internal sealed class ChunkPlan
{
    public required int[] Tokens { get; init; }

    public required CacheKey Key { get; init; }

    /// <summary>Whether the request named the chunk by id (it must be stored: it is never computed for the request).</summary>
    public bool ById { get; init; }

    /// <summary>The stored KV; null until loaded or precomputed.</summary>
    public CachedKv? Entry { get; set; }

    /// <summary>The cache slot of the chunk's first token in the fused prompt.</summary>
    public int Slot { get; set; }
}
