using KvFusion.Cache.Keys;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Chunks;

/// <summary>
/// Prefills a chunk alone (TurboRAG), optionally behind a sink prefix that is dropped, and keeps its KV in the
/// canonical form: K before RoPE (after q/k norm), V, fp16, [layer][kv_head][token][head_dim].
/// </summary>
public static class ChunkPrecomputer
{
    /// <summary>Computes the canonical KV of <paramref name="tokens"/> placed after <paramref name="sink"/>.</summary>
    public static CachedKv Compute(TransformerModel model, CacheKey key, ReadOnlySpan<int> sink, ReadOnlySpan<int> tokens, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("A chunk needs at least one token.", nameof(tokens));
        }

        var c = model.Config;
        var total = sink.Length + tokens.Length;
        if (total > c.MaxPositionEmbeddings)
        {
            throw new ArgumentException($"The chunk ({tokens.Length} tokens) and its sink ({sink.Length}) exceed the model's context of {c.MaxPositionEmbeddings}.", nameof(tokens));
        }

        var all = new int[total];
        sink.CopyTo(all);
        tokens.CopyTo(all.AsSpan(sink.Length));
        var slots = new int[total];
        for (var i = 0; i < total; i++)
        {
            slots[i] = i;
        }

        var n = tokens.Length;
        var layerValues = c.KvHeadCount * n * c.HeadDim;
        var keys = new Half[(long)c.LayerCount * layerValues];
        var values = new Half[(long)c.LayerCount * layerValues];
        var kbuf = new float[total * c.KvWidth];
        var vbuf = new float[total * c.KvWidth];
        using var session = model.CreateSession(total);
        var pass = session.BeginPass(all, slots, slots);
        for (var l = 0; l < c.LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            pass.ComputeQkv(l);
            pass.DownloadFreshKv(preRope: true, kbuf, vbuf);
            CachedKv.StoreLayerTokenMajor(kbuf, sink.Length, n, c.KvHeadCount, c.HeadDim, keys.AsSpan(l * layerValues, layerValues));
            CachedKv.StoreLayerTokenMajor(vbuf, sink.Length, n, c.KvHeadCount, c.HeadDim, values.AsSpan(l * layerValues, layerValues));
            if (l + 1 < c.LayerCount)
            {
                // The last layer's attention and MLP feed nothing that is stored.
                pass.CommitKv(l);
                pass.CompleteLayer(l);
            }
        }

        return new CachedKv(key, model.Fingerprint.Model, model.Fingerprint.Tokenizer, tokens.ToArray(), c.LayerCount, c.KvHeadCount, c.HeadDim, keys, values);
    }

    /// <summary>Reads consecutive slots of every layer of a session's cache into a canonical entry (e.g. a prefix block).</summary>
    public static CachedKv Export(InferenceSession session, CacheKey key, int firstSlot, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(session);
        var model = session.Model;
        var c = model.Config;
        var n = tokens.Length;
        var layerValues = c.KvHeadCount * n * c.HeadDim;
        var keys = new Half[(long)c.LayerCount * layerValues];
        var values = new Half[(long)c.LayerCount * layerValues];
        var kbuf = new float[n * c.KvWidth];
        var vbuf = new float[n * c.KvWidth];
        for (var l = 0; l < c.LayerCount; l++)
        {
            session.ExportKv(l, firstSlot, n, kbuf, vbuf);
            CachedKv.StoreLayerTokenMajor(kbuf, 0, n, c.KvHeadCount, c.HeadDim, keys.AsSpan(l * layerValues, layerValues));
            CachedKv.StoreLayerTokenMajor(vbuf, 0, n, c.KvHeadCount, c.HeadDim, values.AsSpan(l * layerValues, layerValues));
        }

        return new CachedKv(key, model.Fingerprint.Model, model.Fingerprint.Tokenizer, tokens.ToArray(), c.LayerCount, c.KvHeadCount, c.HeadDim, keys, values);
    }

    /// <summary>
    /// Writes an entry's K/V into every layer of a session's cache at consecutive slots (positions set by the caller).
    /// The stored half-precision layers go to the backend as they are; it widens them and rotates K where it computes.
    /// </summary>
    public static void Import(InferenceSession session, CachedKv entry, int firstSlot)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(entry);
        session.ImportKvHalf(firstSlot, entry.TokenCount, entry.Keys, entry.Values);
    }
}
