using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using KvFusion.Cache.Tiers;

namespace KvFusion.Storage.Redis;

/// <summary>
/// The Redis keys of the tier (docs/storage-redis.md): the manifest <c>{prefix}:m:{tenant}:{model}:{entry}</c> and
/// the pieces <c>{prefix}:p:{tenant}:{model}:{entry}:{generation}:{index}</c>. No part holds a brace, so no key has a
/// hash tag: in a cluster each key hashes on its whole name, and the pieces of one value spread over the nodes.
/// </summary>
internal sealed class RedisKeyLayout
{
    private readonly string _manifestPrefix;
    private readonly string _piecePrefix;

    public RedisKeyLayout(string prefix)
    {
        _manifestPrefix = prefix + ":m:";
        _piecePrefix = prefix + ":p:";
    }

    public string Manifest(TierKey key) => $"{_manifestPrefix}{key.Namespace.Tenant}:{key.Namespace.ModelFingerprint}:{key.EntryName}";

    public string Piece(TierKey key, UInt128 generation, int index) =>
        string.Create(CultureInfo.InvariantCulture, $"{_piecePrefix}{key.Namespace.Tenant}:{key.Namespace.ModelFingerprint}:{key.EntryName}:{generation:x32}:{index}");

    /// <summary>The SCAN pattern of the manifests in <paramref name="ns"/>, or of all of them. Tenants, fingerprints
    /// and the prefix hold no glob characters, so nothing needs escaping.</summary>
    public string ManifestPattern(KvNamespace? ns) => ns is { } n ? $"{_manifestPrefix}{n.Tenant}:{n.ModelFingerprint}:*" : _manifestPrefix + "*";

    /// <summary>The entry a manifest key names; false for any key this layout did not write.</summary>
    public bool TryParseManifest(string? redisKey, [NotNullWhen(true)] out TierKey? key)
    {
        key = null;
        if (redisKey is null || !redisKey.StartsWith(_manifestPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = redisKey.AsSpan(_manifestPrefix.Length);
        var first = rest.IndexOf(':');
        if (first < 0)
        {
            return false;
        }

        var tenant = rest[..first].ToString();
        rest = rest[(first + 1)..];
        var second = rest.IndexOf(':');
        if (second < 0)
        {
            return false;
        }

        var model = rest[..second].ToString();
        if (!KvNamespace.IsValidTenant(tenant) || !KvNamespace.IsValidFingerprint(model) || !KvEntryName.TryParse(rest[(second + 1)..].ToString(), out var cacheKey))
        {
            return false;
        }

        key = new TierKey(new KvNamespace(tenant, model), cacheKey.Value);
        return true;
    }
}
