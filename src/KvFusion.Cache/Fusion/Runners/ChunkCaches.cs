using System.Diagnostics;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Fusion.Planning;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Runners;

/// <summary>
/// Brings a plan's chunk caches from the store (precomputing missing ones) into a session. With a loading goal, the
/// <see cref="LoadController"/> picks per chunk the stored level to read, or to compute the chunk from its text.
/// </summary>
internal sealed class ChunkCaches(TransformerModel model, IKvStore store, FusionEngineOptions options)
{
    /// <summary>
    /// Loads the chunk entries the plan lacks, reading them all at once (their transfers overlap each other and the
    /// chunks computed here), precomputing and storing the ones not stored; returns how many were computed.
    /// </summary>
    public async Task<int> EnsureAsync(FusionPlan plan, CancellationToken ct)
    {
        var missing = new List<ChunkPlan>();
        foreach (var c in plan.Chunks)
        {
            if (c.Entry is null)
            {
                missing.Add(c);
            }
        }

        if (missing.Count == 0)
        {
            return 0;
        }

        var choices = Choose(plan, missing);
        // A chunk named by id and computed from its known tokens must still be stored (one round trip, no KV).
        var reads = new Task<CachedKv?>[missing.Count];
        var stored = new Task<bool>?[missing.Count];
        for (var i = 0; i < missing.Count; i++)
        {
            var text = choices?[i] is { Source: LoadSource.Text };
            reads[i] = text ? Task.FromResult<CachedKv?>(null) : ReadAsync(missing[i].Key, choices?[i]?.Codec, ct);
            stored[i] = text && missing[i].ById ? store.ContainsAsync(missing[i].Key, ct).AsTask() : null;
        }

        RefreshIfAllText(missing, choices);

        // Chunks computed from their text run while the reads are in flight.
        var computed = 0;
        for (var i = 0; i < missing.Count; i++)
        {
            if (choices?[i] is { Source: LoadSource.Text })
            {
                missing[i].Entry = Precompute(plan, missing[i], ct);
                computed++;
            }
        }

        for (var i = 0; i < missing.Count; i++)
        {
            var c = missing[i];
            if (c.Entry is not null)
            {
                continue;
            }

            var entry = await reads[i].ConfigureAwait(false);
            if (entry is not null)
            {
                StoredKvCheck.Check(model, entry, $"Chunk {c.Key.Id}");
            }
            else if (c.ById)
            {
                throw FusionPlanner.UnknownChunk(ChunkId.Parse(c.Key.Id), c.Key.Variant);
            }
            else
            {
                entry = Precompute(plan, c, ct);
                await store.PutAsync(entry, ct).ConfigureAwait(false);
                computed++;
            }

            c.Entry = entry;
        }

        for (var i = 0; i < missing.Count; i++)
        {
            if (stored[i] is { } check && !await check.ConfigureAwait(false))
            {
                throw FusionPlanner.UnknownChunk(ChunkId.Parse(missing[i].Key.Id), missing[i].Key.Variant);
            }
        }

        return computed;
    }

    /// <summary>
    /// When every chunk is computed from text and the tier's transfer estimate is older than
    /// <see cref="LoadingOptions.RefreshAfter"/>, reads the first chunk's smallest level in the background (the tier
    /// manager records the read), so a link that got faster is noticed.
    /// </summary>
    private void RefreshIfAllText(List<ChunkPlan> missing, LoadOption?[]? choices)
    {
        if (choices is null || options.Loading is not { } loading || options.CostModel is not { } costs
            || costs.TransferAge(loading.Tier) is { } age && age < loading.RefreshAfter)
        {
            return;
        }

        foreach (var choice in choices)
        {
            if (choice is not { Source: LoadSource.Text })
            {
                return;
            }
        }

        var smallest = loading.StoredCodec;
        var size = costs.StoredSize(smallest)?.PerUnit ?? double.MaxValue;
        foreach (var level in loading.Levels)
        {
            if (costs.StoredSize(level) is { } s && s.PerUnit < size)
            {
                (smallest, size) = (level, s.PerUnit);
            }
        }

        var key = missing[0].Key;
        _ = Task.Run(async () =>
        {
            try
            {
                await ReadAsync(key, smallest, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Only a measurement: a failed read is the tier manager's to count and log.
            }
        });
    }

    /// <summary>Computes a chunk alone behind the plan's sink (a chunk computed from its text by choice is stored already, and is not written again).</summary>
    private CachedKv Precompute(FusionPlan plan, ChunkPlan chunk, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var entry = ChunkPrecomputer.Compute(model, chunk.Key, plan.Sink, chunk.Tokens, options.HiddenStateLayers, ct);
        options.CostModel?.ObservePrefill(model.Fingerprint.Model, (long)(plan.Sink.Length + chunk.Tokens.Length) * model.Config.LayerCount, Stopwatch.GetElapsedTime(started));
        return entry;
    }

    /// <summary>The chunk's entry at <paramref name="level"/> (its own entry when that is the stored codec or null), or its own entry when the level is not stored.</summary>
    private async Task<CachedKv?> ReadAsync(CacheKey key, KvCodecSpec? level, CancellationToken ct)
    {
        if (level is { } codec && options.Loading is { } loading && codec != loading.StoredCodec
            && await store.GetAsync(KvStoredLevels.At(key, codec), ct).ConfigureAwait(false) is { } stored)
        {
            return stored;
        }

        return await store.GetAsync(key, ct).ConfigureAwait(false);
    }

    /// <summary>The controller's option per missing chunk, or null (read each chunk's own entry) without a goal or before costs are measured.</summary>
    private LoadOption?[]? Choose(FusionPlan plan, List<ChunkPlan> missing)
    {
        if (plan.Loading is not { } goal)
        {
            return null;
        }

        if (options.Loading is not { } loading || options.CostModel is not { } costModel)
        {
            plan.LoadReport = new LoadReport { Choices = [], Skipped = "the engine has no loading controller (FusionEngineOptions.Loading and CostModel)" };
            return null;
        }

        var config = model.Config;
        var bytesPerToken = 2L * config.LayerCount * config.KvHeadCount * config.HeadDim * 2;
        var levels = new List<KvCodecSpec> { loading.StoredCodec };
        foreach (var level in loading.Levels)
        {
            if (!levels.Contains(level))
            {
                levels.Add(level);
            }
        }

        var chunks = new LoadChunk[missing.Count];
        for (var i = 0; i < missing.Count; i++)
        {
            var fp16 = missing[i].Tokens.Length * bytesPerToken;
            var chunkOptions = new List<LoadOption>();
            foreach (var level in levels)
            {
                var kl = level.IsLossless ? 0 : loading.CodecKl.TryGetValue(level, out var measured) ? measured : double.NaN;
                if (!double.IsNaN(kl) && costModel.StoredSize(level) is { } size)
                {
                    chunkOptions.Add(LoadOption.Stored(loading.Tier, level, (long)Math.Ceiling(size.Predict(fp16)), kl));
                }
            }

            if (loading.AllowText)
            {
                chunkOptions.Add(LoadOption.Text);
            }

            chunks[i] = new LoadChunk(missing[i].Tokens.Length, chunkOptions);
        }

        var request = new LoadRequest
        {
            Chunks = chunks,
            Layers = config.LayerCount,
            RecomputeLayers = Math.Max(0, config.LayerCount - 1),
            Fp16BytesPerToken = bytesPerToken,
            QueryTokens = plan.Query.Length,
            Ratios = [new LoadRatio(plan.RecomputeRatio, 0)],
            Goal = goal,
            Overlap = LoadOverlap.Chunks,
        };
        try
        {
            var chosen = new LoadController(costModel.For(model.Fingerprint.Model)).Plan(request);
            var names = new string[chosen.Choices.Count];
            var result = new LoadOption?[chosen.Choices.Count];
            for (var i = 0; i < names.Length; i++)
            {
                result[i] = chosen.Choices[i].Option;
                names[i] = chosen.Choices[i].Option.ToString();
            }

            plan.LoadReport = new LoadReport { Choices = names, PredictedTtft = chosen.PredictedTtft, PredictedMeanKl = chosen.PredictedMeanKl, MeetsGoal = chosen.MeetsGoal };
            return result;
        }
        catch (LoadPlanningException e)
        {
            plan.LoadReport = new LoadReport { Choices = [], Skipped = e.Message };
            return null;
        }
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
