using KvFusion.Cache.Container;
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
    public static CachedKv Compute(TransformerModel model, CacheKey key, ReadOnlySpan<int> sink, ReadOnlySpan<int> tokens, CancellationToken cancellationToken = default) =>
        Compute(model, key, sink, tokens, [], cancellationToken);

    /// <summary>
    /// Computes the canonical KV of <paramref name="tokens"/> placed after <paramref name="sink"/>, with the hidden
    /// states of the chunk's tokens entering each of <paramref name="hiddenStateLayers"/> (the E-cache; none when empty).
    /// </summary>
    /// <exception cref="ArgumentException">A hidden-state layer is not one of the model's, or the layers do not increase.</exception>
    public static CachedKv Compute(TransformerModel model, CacheKey key, ReadOnlySpan<int> sink, ReadOnlySpan<int> tokens, IReadOnlyList<int> hiddenStateLayers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hiddenStateLayers);
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
        for (var i = 0; i < hiddenStateLayers.Count; i++)
        {
            if ((uint)hiddenStateLayers[i] >= (uint)c.LayerCount || (i > 0 && hiddenStateLayers[i] <= hiddenStateLayers[i - 1]))
            {
                throw new ArgumentException($"E-cache layers must be increasing layers of the model (0 to {c.LayerCount - 1}); got [{string.Join(", ", hiddenStateLayers)}].", nameof(hiddenStateLayers));
            }
        }

        var states = new Half[hiddenStateLayers.Count][];
        var hidden = hiddenStateLayers.Count == 0 ? [] : new float[total * c.HiddenSize];
        using var session = model.CreateSession(total);
        var pass = session.BeginPass(all, slots, slots);
        var nextState = 0;
        for (var l = 0; l < c.LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (nextState < hiddenStateLayers.Count && hiddenStateLayers[nextState] == l)
            {
                // The sink's rows are dropped, as from the K/V: a receiver restarts only the chunk's rows.
                pass.DownloadHidden(hidden);
                var state = new Half[n * c.HiddenSize];
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(hidden.AsSpan(sink.Length * c.HiddenSize, n * c.HiddenSize), state);
                states[nextState++] = state;
            }

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

        var entry = new CachedKv(key, model.Fingerprint.Model, model.Fingerprint.Tokenizer, tokens.ToArray(), c.LayerCount, c.KvHeadCount, c.HeadDim, keys, values);
        return states.Length == 0 ? entry : entry.WithHiddenStates(new KvHiddenStates(n, c.HiddenSize, hiddenStateLayers, states));
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
