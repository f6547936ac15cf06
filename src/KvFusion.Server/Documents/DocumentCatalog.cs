using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using KvFusion.Cache.Tiers;
using KvFusion.Client.Contracts;
using KvFusion.Server.Hosting;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Documents;

/// <summary>
/// Documents by id: the ordered chunk list of each, kept as one JSON file per document under
/// <see cref="KvFusionServerOptions.DocumentsPath"/>/{tenant}/{model fingerprint}/. The id is BLAKE3 over the model
/// fingerprint and the chunk ids, so the same text chunked the same way is the same document.
/// </summary>
public sealed class DocumentCatalog
{
    private readonly string _root;
    private readonly ConcurrentDictionary<string, DocumentInfo> _cache = new(StringComparer.Ordinal);

    /// <summary>Creates the catalog under the configured folder.</summary>
    public DocumentCatalog(IOptions<KvFusionServerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _root = Path.GetFullPath(options.Value.DocumentsPath);
    }

    /// <summary>The id of a document made of <paramref name="chunkIds"/> under a model.</summary>
    public static string IdOf(string modelFingerprint, IReadOnlyList<string> chunkIds)
    {
        ArgumentNullException.ThrowIfNull(chunkIds);
        using var hasher = Blake3.Hasher.New();
        hasher.Update(Encoding.UTF8.GetBytes("kvfusion-document-v1\n" + modelFingerprint + "\n"));
        foreach (var id in chunkIds)
        {
            hasher.Update(Encoding.ASCII.GetBytes(id));
        }

        return Convert.ToHexStringLower(hasher.Finalize().AsSpan());
    }

    /// <summary>Saves the document (atomically: a reader sees the old file or the new one).</summary>
    public async Task SaveAsync(KvNamespace ns, DocumentInfo document, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(document);
        var path = PathOf(ns, document.Id);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        await File.WriteAllBytesAsync(temp, JsonSerializer.SerializeToUtf8Bytes(document, KvFusionJsonContext.Default.DocumentInfo), ct).ConfigureAwait(false);
        File.Move(temp, path, overwrite: true);
        _cache[CacheKey(ns, document.Id)] = document;
    }

    /// <summary>The document, or null when the tenant has none with that id.</summary>
    public async Task<DocumentInfo?> FindAsync(KvNamespace ns, string id, CancellationToken ct)
    {
        if (_cache.TryGetValue(CacheKey(ns, id), out var cached))
        {
            return cached;
        }

        var path = PathOf(ns, id);
        if (!File.Exists(path))
        {
            return null;
        }

        var document = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false), KvFusionJsonContext.Default.DocumentInfo);
        if (document is not null)
        {
            _cache[CacheKey(ns, id)] = document;
        }

        return document;
    }

    // The id is validated hex and the tenant and fingerprint are validated names, so the path cannot leave the root.
    private string PathOf(KvNamespace ns, string id) => Path.Combine(_root, ns.Tenant, ns.ModelFingerprint, id + ".json");

    private static string CacheKey(KvNamespace ns, string id) => $"{ns}/{id}";
}
