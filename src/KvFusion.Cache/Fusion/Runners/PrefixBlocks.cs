using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>The exact-prefix blocks of a prompt found in the store: their chain of ids and how many tokens were loaded.</summary>
internal readonly record struct PrefixLoad(IReadOnlyList<PrefixBlockId> Chain, int Loaded)
{
    /// <summary>Whole blocks loaded.</summary>
    public int Blocks => Loaded / PrefixBlockId.BlockTokens;
}

/// <summary>Exact prefix reuse: loads stored 256-token blocks into a session, and stores the ones it computed.</summary>
internal sealed class PrefixBlocks(TransformerModel model, IKvStore store, bool storeComputed)
{
    /// <summary>Loads the longest run of stored prefix blocks covering at most <paramref name="limit"/> tokens.</summary>
    public async Task<PrefixLoad> LoadAsync(InferenceSession session, int[] tokens, int limit, CancellationToken ct)
    {
        var chain = PrefixBlockId.ComputeChain(model.Fingerprint.Model, model.Fingerprint.Tokenizer, tokens);
        var size = PrefixBlockId.BlockTokens;
        var entries = new List<CachedKv>();
        for (var b = 0; b < chain.Count && (b + 1) * size <= limit; b++)
        {
            var entry = await store.GetAsync(Key(chain[b]), ct).ConfigureAwait(false);
            if (entry is null || entry.ModelFingerprint != model.Fingerprint.Model || entry.TokenCount != size)
            {
                break;
            }

            entries.Add(entry);
        }

        var loaded = entries.Count * size;
        if (loaded > 0)
        {
            var slots = new int[loaded];
            for (var i = 0; i < loaded; i++)
            {
                slots[i] = i;
            }

            session.Cache.SetPositions(slots, slots);
            for (var b = 0; b < entries.Count; b++)
            {
                ChunkPrecomputer.Import(session, entries[b], b * size);
            }
        }

        return new PrefixLoad(chain, loaded);
    }

    /// <summary>Stores the full blocks in [loaded, <paramref name="upTo"/>) that the session computed exactly.</summary>
    public async Task StoreAsync(InferenceSession session, int[] tokens, PrefixLoad load, int upTo, CancellationToken ct)
    {
        if (!storeComputed)
        {
            return;
        }

        var size = PrefixBlockId.BlockTokens;
        for (var b = load.Loaded / size; b < load.Chain.Count && (b + 1) * size <= upTo; b++)
        {
            var key = Key(load.Chain[b]);
            if (await store.ContainsAsync(key, ct).ConfigureAwait(false))
            {
                continue;
            }

            var entry = ChunkPrecomputer.Export(session, key, b * size, tokens.AsSpan(b * size, size));
            await store.PutAsync(entry, ct).ConfigureAwait(false);
        }
    }

    private static CacheKey Key(PrefixBlockId id) => new(CacheEntryKind.PrefixBlock, id.ToString(), "");
}
