using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>A chunk to store: its id, store key, tokens and the sink it is precomputed behind.</summary>
internal sealed record ChunkTarget(ChunkId Id, CacheKey Key, int[] Tokens, int[] Sink);
