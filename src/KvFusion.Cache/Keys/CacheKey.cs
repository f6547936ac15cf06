namespace KvFusion.Cache.Keys;

/// <summary>What a stored KV entry is.</summary>
public enum CacheEntryKind
{
    /// <summary>A chunk computed alone (position-free, reusable anywhere).</summary>
    Chunk,

    /// <summary>A 256-token block of an exact prefix (valid only after the same preceding tokens).</summary>
    PrefixBlock,
}

/// <summary>
/// The key of a stored KV entry: kind, the 64-hex id (a <see cref="ChunkId"/> or <see cref="PrefixBlockId"/>) and the
/// precompute variant (a chunk's KV depends on the sink it was computed behind). Tenancy adds a namespace in the
/// storage tiers.
/// </summary>
/// <param name="Kind">Chunk or prefix block.</param>
/// <param name="Id">Lowercase hex id.</param>
/// <param name="Variant">Precompute variant (e.g. <c>sink:bos</c>); empty for prefix blocks.</param>
public readonly record struct CacheKey(CacheEntryKind Kind, string Id, string Variant)
{
    /// <summary>The key as one string, stable across processes: <c>chunk/{id}/{variant}</c> or <c>prefix/{id}</c>.</summary>
    public override string ToString() => Kind == CacheEntryKind.Chunk ? $"chunk/{Id}/{Variant}" : $"prefix/{Id}";
}
