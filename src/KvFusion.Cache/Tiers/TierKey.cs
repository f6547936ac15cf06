using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tiers;

/// <summary>The address of one stored entry in a tier: its namespace (tenant and model) and its cache key.</summary>
/// <param name="Namespace">Tenant and model.</param>
/// <param name="Key">The entry's key within the namespace.</param>
public readonly record struct TierKey(KvNamespace Namespace, CacheKey Key)
{
    /// <summary>The entry's name within its namespace (<see cref="KvEntryName.Format"/>).</summary>
    public string EntryName => KvEntryName.Format(Key);

    /// <summary><c>{tenant}/{model}/{entry name}</c>: stable across processes, for logs and reports.</summary>
    public override string ToString() => $"{Namespace}/{EntryName}";
}
