using KvFusion.Cache.Chunks;
using KvFusion.Cache.Fusion.Planning;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>Brings a plan's chunk caches from the store (precomputing missing ones) into a session.</summary>
internal sealed class ChunkCaches(TransformerModel model, IKvStore store, IReadOnlyList<int> hiddenStateLayers)
{
    /// <summary>Loads stored chunk entries, precomputing and storing the missing ones; returns how many were computed.</summary>
    public async Task<int> EnsureAsync(FusionPlan plan, CancellationToken ct)
    {
        var computed = 0;
        foreach (var c in plan.Chunks)
        {
            if (c.Entry is not null)
            {
                continue;
            }

            var entry = await store.GetAsync(c.Key, ct).ConfigureAwait(false);
            if (entry is not null)
            {
                StoredKvCheck.Check(model, entry, $"Chunk {c.Key.Id}");
            }
            else
            {
                entry = ChunkPrecomputer.Compute(model, c.Key, plan.Sink, c.Tokens, hiddenStateLayers, ct);
                await store.PutAsync(entry, ct).ConfigureAwait(false);
                computed++;
            }

            c.Entry = entry;
        }

        return computed;
    }

    /// <summary>Writes every chunk's stored KV at its slots, positioned where it sits in the fused prompt.</summary>
    public static void Import(InferenceSession session, FusionPlan plan)
    {
        foreach (var c in plan.Chunks)
        {
            var n = c.Tokens.Length;
            var slots = new int[n];
            for (var i = 0; i < n; i++)
            {
                slots[i] = c.Slot + i;
            }

            session.Cache.SetPositions(slots, slots);
            ChunkPrecomputer.Import(session, c.Entry!, c.Slot);
        }
    }

    /// <summary>Whether every chunk of the plan was stored with the E-cache of <paramref name="layer"/>.</summary>
    public static bool HaveHiddenStates(FusionPlan plan, int layer)
    {
        foreach (var c in plan.Chunks)
        {
            if ((c.Entry?.HiddenStates?.IndexOf(layer) ?? -1) < 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Writes every chunk's stored hidden state entering <paramref name="layer"/> (its E-cache), in prompt order, as
    /// [chunk tokens, hidden] floats; returns how many it wrote.
    /// </summary>
    /// <exception cref="FusionException"><see cref="FusionError.MissingHiddenState"/>: a chunk was stored without that layer's E-cache.</exception>
    public static int CopyHiddenStates(FusionPlan plan, int layer, int hiddenSize, Span<float> destination)
    {
        var at = 0;
        for (var i = 0; i < plan.Chunks.Count; i++)
        {
            var c = plan.Chunks[i];
            var states = c.Entry?.HiddenStates;
            var index = states?.IndexOf(layer) ?? -1;
            if (index < 0)
            {
                throw new FusionException(FusionError.MissingHiddenState,
                    $"Chunk {i} was stored without the E-cache of layer {layer}; precompute it with FusionEngineOptions.HiddenStateLayers including {layer}.");
            }

            var n = c.Tokens.Length * hiddenSize;
            FloatConversion.ToSingle(states!.State(index), destination.Slice(at, n));
            at += n;
        }

        return at;
    }
}
