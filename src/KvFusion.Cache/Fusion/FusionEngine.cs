using System.Diagnostics;
using System.Runtime.InteropServices;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Transformer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// Builds fused prompts from a prefix, chunks and a query on one model: full recompute, exact prefix reuse, full
/// chunk reuse, or CacheBlend. Chunks given as text are precomputed and stored on the way. A backend computes one
/// request at a time; requests queue here.
/// </summary>
public sealed class FusionEngine : IDisposable
{
    private readonly FusionEngineOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _compute = new(1, 1);

    /// <summary>Creates an engine over a loaded model and a store.</summary>
    public FusionEngine(TransformerModel model, IKvStore store, FusionEngineOptions? options = null, ILogger<FusionEngine>? logger = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Store = store ?? throw new ArgumentNullException(nameof(store));
        _options = options ?? new FusionEngineOptions();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>The store of chunk and prefix-block KV.</summary>
    public IKvStore Store { get; }

    /// <summary>The id of a chunk's tokens under this model and tokenizer.</summary>
    public ChunkId ChunkIdOf(ReadOnlySpan<int> tokens) => ChunkId.Compute(Model.Fingerprint.Model, Model.Fingerprint.Tokenizer, tokens);

    /// <summary>Tokenizes text with the model's tokenizer.</summary>
    public int[] Tokenize(string text) =>
        (Model.Tokenizer ?? throw new FusionException(FusionError.InvalidRequest, $"{Model.Directory} has no tokenizer; pass token ids.")).Encode(text);

    /// <summary>Precomputes a chunk (if not stored yet) and returns its id.</summary>
    public async Task<ChunkId> PutChunkAsync(ChunkInput chunk, SinkKind? sink = null, string? prefix = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        var tokens = chunk.Tokens?.ToArray() ?? (chunk.Text is { } t ? Tokenize(t) : throw new FusionException(FusionError.InvalidRequest, "A chunk to store needs text or tokens."));
        var prefixTokens = prefix is null ? [] : Tokenize(prefix);
        var sinkTokens = SinkTokens(sink ?? _options.DefaultSink, prefixTokens);
        CheckChunkFits(tokens, sinkTokens.Length);
        var id = ChunkIdOf(tokens);
        var key = new CacheKey(CacheEntryKind.Chunk, id.ToString(), Variant(sink ?? _options.DefaultSink, prefixTokens));
        if (!await Store.ContainsAsync(key, cancellationToken).ConfigureAwait(false))
        {
            await _compute.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var entry = ChunkPrecomputer.Compute(Model, key, sinkTokens, tokens, cancellationToken);
                await Store.PutAsync(entry, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _compute.Release();
            }
        }

        return id;
    }

    /// <summary>Fuses the request's prompt and returns a context to generate from.</summary>
    /// <exception cref="FusionException">Unknown chunk, chunk of another model, empty query, or a prompt beyond the context.</exception>
    public async Task<FusedContext> FuseAsync(FusionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var total = Stopwatch.StartNew();
        var stages = new Dictionary<string, TimeSpan>();
        var sw = Stopwatch.StartNew();
        var plan = await PlanAsync(request, cancellationToken).ConfigureAwait(false);
        stages["tokenize"] = sw.Elapsed;

        await _compute.WaitAsync(cancellationToken).ConfigureAwait(false);
        InferenceSession? session = null;
        try
        {
            var capacity = Math.Min(Model.Config.MaxPositionEmbeddings, plan.Tokens.Length + Math.Max(0, request.ReserveTokens));
            session = Model.CreateSession(capacity);
            var logits = new float[Model.Config.VocabSize];
            var report = request.Mode switch
            {
                FusionMode.Full => RunFull(session, plan, logits, stages, cancellationToken),
                FusionMode.Prefix => await RunPrefixAsync(session, plan, logits, stages, cancellationToken).ConfigureAwait(false),
                FusionMode.Reuse => await RunReuseAsync(session, plan, logits, stages, cancellationToken).ConfigureAwait(false),
                FusionMode.Blend => await RunBlendAsync(session, plan, request.Blend, logits, stages, cancellationToken).ConfigureAwait(false),
                _ => throw new FusionException(FusionError.InvalidRequest, $"Unknown mode {request.Mode}."),
            };
            report = report with { Total = total.Elapsed, StageTimes = stages };
            _logger.LogDebug("Fused {Tokens} tokens in {Mode} mode in {Milliseconds:F1} ms", report.TotalTokens, report.Mode, report.Total.TotalMilliseconds);
            var context = new FusedContext(session, logits, report, plan.Tokens);
            session = null;
            return context;
        }
        finally
        {
            session?.Dispose();
            _compute.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _compute.Dispose();

    private sealed class ChunkPlan
    {
        public required int[] Tokens { get; init; }

        public required CacheKey Key { get; init; }

        public CachedKv? Entry { get; set; }

        public int Slot { get; set; }
    }

    private sealed class Plan
    {
        public required string ModeName { get; init; }

        public required int[] Prefix { get; init; }

        public required List<ChunkPlan> Chunks { get; init; }

        public required int[] Query { get; init; }

        public required int[] Sink { get; init; }

        public required int[] Tokens { get; init; }

        public int ChunkTokens => Chunks.Sum(c => c.Tokens.Length);
    }

    private async Task<Plan> PlanAsync(FusionRequest request, CancellationToken ct)
    {
        var query = request.QueryTokens?.ToArray() ?? (string.IsNullOrEmpty(request.Query) ? [] : Tokenize(request.Query));
        if (query.Length == 0)
        {
            throw new FusionException(FusionError.EmptyQuery, "The query is empty.");
        }

        var prefix = string.IsNullOrEmpty(request.Prefix) ? [] : Tokenize(request.Prefix);
        var sinkKind = request.Sink ?? _options.DefaultSink;
        var sink = SinkTokens(sinkKind, prefix);
        var variant = Variant(sinkKind, prefix);
        var chunks = new List<ChunkPlan>(request.Chunks.Count);
        for (var i = 0; i < request.Chunks.Count; i++)
        {
            var input = request.Chunks[i] ?? throw new FusionException(FusionError.InvalidRequest, $"Chunk {i} is null.");
            if (input.Id is { } id)
            {
                var key = new CacheKey(CacheEntryKind.Chunk, id.ToString(), variant);
                var entry = await Store.GetAsync(key, ct).ConfigureAwait(false)
                    ?? throw new FusionException(FusionError.UnknownChunk, $"Chunk {id} is not stored (variant {variant}); store it first or send its text.");
                CheckEntry(entry, $"Chunk {id}");
                chunks.Add(new ChunkPlan { Tokens = [.. entry.Tokens], Key = key, Entry = entry });
            }
            else
            {
                var tokens = input.Tokens?.ToArray() ?? (input.Text is { } text ? Tokenize(text) : null)
                    ?? throw new FusionException(FusionError.InvalidRequest, $"Chunk {i} has neither an id, text nor tokens.");
                if (tokens.Length == 0)
                {
                    throw new FusionException(FusionError.InvalidRequest, $"Chunk {i} has no tokens.");
                }

                foreach (var t in tokens)
                {
                    if ((uint)t >= (uint)Model.Config.VocabSize)
                    {
                        throw new FusionException(FusionError.InvalidRequest, $"Chunk {i} has token id {t}, outside the vocabulary of {Model.Config.VocabSize}.");
                    }
                }

                CheckChunkFits(tokens, sink.Length);
                var key = new CacheKey(CacheEntryKind.Chunk, ChunkIdOf(tokens).ToString(), variant);
                chunks.Add(new ChunkPlan { Tokens = tokens, Key = key });
            }
        }

        var all = new int[prefix.Length + chunks.Sum(c => c.Tokens.Length) + query.Length];
        var at = 0;
        prefix.CopyTo(all, 0);
        at += prefix.Length;
        foreach (var c in chunks)
        {
            c.Slot = at;
            c.Tokens.CopyTo(all, at);
            at += c.Tokens.Length;
        }

        query.CopyTo(all, at);
        if (all.Length > Model.Config.MaxPositionEmbeddings)
        {
            throw new FusionException(FusionError.ContextOverflow,
                $"The fused prompt has {all.Length} tokens (prefix {prefix.Length}, chunks {all.Length - prefix.Length - query.Length}, query {query.Length}); the model's context is {Model.Config.MaxPositionEmbeddings}.");
        }

        foreach (var t in query)
        {
            if ((uint)t >= (uint)Model.Config.VocabSize)
            {
                throw new FusionException(FusionError.InvalidRequest, $"Query token id {t} is outside the vocabulary of {Model.Config.VocabSize}.");
            }
        }

        var modeName = request.Mode == FusionMode.Blend
            ? new FusionModeSpec(FusionMode.Blend, request.Blend.Ratio).ToString()
            : request.Mode.ToString().ToLowerInvariant();
        return new Plan { ModeName = modeName, Prefix = prefix, Chunks = chunks, Query = query, Sink = sink, Tokens = all };
    }

    private FusionReport RunFull(InferenceSession session, Plan plan, float[] logits, Dictionary<string, TimeSpan> stages, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        session.Prefill(plan.Tokens, logits, cancellationToken: ct);
        stages["compute"] = sw.Elapsed;
        return Report(plan, reused: 0, Enumerable.Repeat(plan.Tokens.Length, Model.Config.LayerCount).ToArray());
    }

    private async Task<FusionReport> RunPrefixAsync(InferenceSession session, Plan plan, float[] logits, Dictionary<string, TimeSpan> stages, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var (blocks, loaded) = await LoadPrefixBlocksAsync(session, plan.Tokens, plan.Tokens.Length - 1, ct).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();
        session.Prefill(plan.Tokens.AsSpan(loaded), logits, cancellationToken: ct);
        stages["compute"] = sw.Elapsed;
        sw.Restart();
        await StorePrefixBlocksAsync(session, plan.Tokens, blocks, loaded, plan.Tokens.Length, ct).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        return Report(plan, loaded, Enumerable.Repeat(plan.Tokens.Length - loaded, Model.Config.LayerCount).ToArray()) with { PrefixBlocksReused = loaded / PrefixBlockId.BlockTokens };
    }

    private async Task<FusionReport> RunReuseAsync(InferenceSession session, Plan plan, float[] logits, Dictionary<string, TimeSpan> stages, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var precomputed = await EnsureChunksAsync(plan, ct).ConfigureAwait(false);
        stages["precompute"] = sw.Elapsed;
        sw.Restart();
        var (blocks, loaded) = await LoadPrefixBlocksAsync(session, plan.Tokens, plan.Prefix.Length, ct).ConfigureAwait(false);
        stages["load"] = sw.Elapsed;
        sw.Restart();
        var computed = plan.Query.Length;
        if (loaded < plan.Prefix.Length)
        {
            session.Prefill(plan.Prefix.AsSpan(loaded), logits, cancellationToken: ct);
            computed += plan.Prefix.Length - loaded;
        }

        stages["compute"] = sw.Elapsed;
        sw.Restart();
        ImportChunks(session, plan);
        stages["load"] += sw.Elapsed;
        sw.Restart();
        session.Prefill(plan.Query, logits, cancellationToken: ct);
        stages["compute"] += sw.Elapsed;
        sw.Restart();
        await StorePrefixBlocksAsync(session, plan.Tokens, blocks, loaded, plan.Prefix.Length, ct).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        return Report(plan, plan.ChunkTokens + loaded, Enumerable.Repeat(computed, Model.Config.LayerCount).ToArray()) with
        {
            ChunksPrecomputed = precomputed,
            PrefixBlocksReused = loaded / PrefixBlockId.BlockTokens,
        };
    }

    private async Task<FusionReport> RunBlendAsync(InferenceSession session, Plan plan, BlendOptions blend, float[] logits, Dictionary<string, TimeSpan> stages, CancellationToken ct)
    {
        var layers = Model.Config.LayerCount;
        blend.Validate(layers);
        var sw = Stopwatch.StartNew();
        var precomputed = await EnsureChunksAsync(plan, ct).ConfigureAwait(false);
        stages["precompute"] = sw.Elapsed;
        sw.Restart();
        var (blocks, loaded) = await LoadPrefixBlocksAsync(session, plan.Tokens, plan.Prefix.Length, ct).ConfigureAwait(false);

        // Rows of the pass: everything after the reused prefix blocks. Row r is slot loaded + r.
        var rows = plan.Tokens.Length - loaded;
        var slots = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            slots[r] = loaded + r;
        }

        var pass = session.BeginPass(plan.Tokens.AsSpan(loaded), slots, slots);
        ImportChunks(session, plan);
        stages["load"] = sw.Elapsed;

        // Rows that are always computed: the uncached prefix and the query; candidates: the chunk tokens.
        var chunkStart = plan.Prefix.Length - loaded;
        var queryStart = rows - plan.Query.Length;
        var mustKeep = new List<int>();
        for (var r = 0; r < chunkStart; r++)
        {
            mustKeep.Add(r);
        }

        var queryRows = new List<int>();
        for (var r = queryStart; r < rows; r++)
        {
            mustKeep.Add(r);
            queryRows.Add(r);
        }

        var steps = blend.Steps();
        var totalCandidates = plan.ChunkTokens;
        var isCandidate = new bool[rows];
        for (var r = chunkStart; r < queryStart; r++)
        {
            isCandidate[r] = true;
        }

        var recomputed = new int[layers];
        var selection = new List<(int, int, int)>();
        (double, double)? deviationMeans = null;
        var selectedSlots = new List<int>();
        var selectTime = TimeSpan.Zero;
        var stepIndex = 0;
        sw.Restart();
        for (var l = 0; l < layers; l++)
        {
            ct.ThrowIfCancellationRequested();
            pass.ComputeQkv(l);
            var n = pass.RowCount;
            if (stepIndex < steps.Count && steps[stepIndex].Layer == l)
            {
                var selectWatch = Stopwatch.StartNew();
                var scores = new float[n];
                var criterion = steps[stepIndex].Criterion ?? blend.Criterion;
                var useAttention = criterion != SelectionCriterion.Deviation;
                var deviation = new float[n];
                pass.CacheDeviation(blend.Deviation != DeviationTarget.Value, blend.Deviation != DeviationTarget.Key, deviation);
                var committedAll = false;
                if (blend.WriteAllAtCheckLayer || useAttention)
                {
                    // The query should attend to fresh keys when it ranks tokens; they are computed anyway.
                    pass.CommitKv(l);
                    committedAll = true;
                }

                float[]? attention = null;
                if (useAttention)
                {
                    attention = new float[session.Cache.Length];
                    pass.QueryAttention(CollectionsMarshal.AsSpan(queryRows), attention);
                }

                var candidates = new List<int>();
                var keep = new List<int>();
                for (var r = 0; r < n; r++)
                {
                    if (isCandidate[r])
                    {
                        candidates.Add(r);
                        var slot = pass.Slots[r];
                        scores[r] = criterion switch
                        {
                            SelectionCriterion.Deviation => deviation[r],
                            SelectionCriterion.QueryAttention => attention![slot],
                            _ => deviation[r] * attention![slot],
                        };
                    }
                    else
                    {
                        keep.Add(r);
                    }
                }

                var k = (int)Math.Round(steps[stepIndex].Ratio * totalCandidates, MidpointRounding.AwayFromZero);
                var kept = TokenSelection.Select(scores, CollectionsMarshal.AsSpan(candidates), k, CollectionsMarshal.AsSpan(keep));
                selection.Add((l, Math.Min(k, candidates.Count), totalCandidates));
                deviationMeans = DeviationMeans(deviation, candidates, kept);
                if (!committedAll)
                {
                    pass.CommitKv(l, kept);
                }

                var newCandidate = new bool[kept.Length];
                selectedSlots.Clear();
                for (var i = 0; i < kept.Length; i++)
                {
                    newCandidate[i] = isCandidate[kept[i]];
                    if (newCandidate[i])
                    {
                        selectedSlots.Add(pass.Slots[kept[i]]);
                    }
                }

                isCandidate = newCandidate;
                pass.KeepRows(kept);
                queryRows.Clear();
                for (var i = kept.Length - plan.Query.Length; i < kept.Length; i++)
                {
                    queryRows.Add(i);
                }

                stepIndex++;
                selectTime += selectWatch.Elapsed;
            }
            else if (l == 0 && blend.ReuseLayerZero)
            {
                // Layer 0's K/V depend only on the token: the stored ones are exact, keep them.
                var own = new List<int>();
                for (var r = 0; r < n; r++)
                {
                    if (!isCandidate[r])
                    {
                        own.Add(r);
                    }
                }

                pass.CommitKv(l, CollectionsMarshal.AsSpan(own));
            }
            else
            {
                pass.CommitKv(l);
            }

            recomputed[l] = pass.RowCount;
            pass.CompleteLayer(l);
        }

        pass.ComputeLogits(pass.RowCount - 1, logits);
        stages["compute"] = sw.Elapsed - selectTime;
        stages["select"] = selectTime;
        sw.Restart();
        await StorePrefixBlocksAsync(session, plan.Tokens, blocks, loaded, plan.Prefix.Length, ct).ConfigureAwait(false);
        stages["store"] = sw.Elapsed;
        return Report(plan, plan.ChunkTokens + loaded, recomputed) with
        {
            ChunksPrecomputed = precomputed,
            PrefixBlocksReused = loaded / PrefixBlockId.BlockTokens,
            Selection = selection,
            SelectedSlots = selectedSlots,
            DeviationMeans = deviationMeans,
        };
    }

    private static (double, double) DeviationMeans(float[] deviation, List<int> candidates, int[] kept)
    {
        var keptSet = new HashSet<int>(kept);
        double sel = 0, unsel = 0;
        int ns = 0, nu = 0;
        foreach (var r in candidates)
        {
            if (keptSet.Contains(r))
            {
                sel += deviation[r];
                ns++;
            }
            else
            {
                unsel += deviation[r];
                nu++;
            }
        }

        return (ns > 0 ? sel / ns : 0, nu > 0 ? unsel / nu : 0);
    }

    private static FusionReport Report(Plan plan, int reused, int[] recomputed) => new()
    {
        Mode = plan.ModeName,
        TotalTokens = plan.Tokens.Length,
        PrefixTokens = plan.Prefix.Length,
        ChunkTokens = plan.ChunkTokens,
        QueryTokens = plan.Query.Length,
        ReusedTokens = reused,
        RecomputedPerLayer = recomputed,
        StageTimes = new Dictionary<string, TimeSpan>(),
        Total = TimeSpan.Zero,
    };

    /// <summary>Loads stored chunk entries (precomputing and storing the missing ones); returns how many were computed.</summary>
    private async Task<int> EnsureChunksAsync(Plan plan, CancellationToken ct)
    {
        var computed = 0;
        foreach (var c in plan.Chunks)
        {
            if (c.Entry is not null)
            {
                continue;
            }

            var entry = await Store.GetAsync(c.Key, ct).ConfigureAwait(false);
            if (entry is not null)
            {
                CheckEntry(entry, $"Chunk {c.Key.Id}");
            }
            else
            {
                entry = ChunkPrecomputer.Compute(Model, c.Key, plan.Sink, c.Tokens, ct);
                await Store.PutAsync(entry, ct).ConfigureAwait(false);
                computed++;
            }

            c.Entry = entry;
        }

        return computed;
    }

    private static void ImportChunks(InferenceSession session, Plan plan)
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

    /// <summary>Loads the longest run of stored prefix blocks covering at most <paramref name="limit"/> tokens.</summary>
    private async Task<(IReadOnlyList<PrefixBlockId> Chain, int Loaded)> LoadPrefixBlocksAsync(InferenceSession session, int[] tokens, int limit, CancellationToken ct)
    {
        var chain = PrefixBlockId.ComputeChain(Model.Fingerprint.Model, Model.Fingerprint.Tokenizer, tokens);
        var size = PrefixBlockId.BlockTokens;
        var entries = new List<CachedKv>();
        for (var b = 0; b < chain.Count && (b + 1) * size <= limit; b++)
        {
            var entry = await Store.GetAsync(new CacheKey(CacheEntryKind.PrefixBlock, chain[b].ToString(), ""), ct).ConfigureAwait(false);
            if (entry is null || entry.ModelFingerprint != Model.Fingerprint.Model || entry.TokenCount != size)
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

        return (chain, loaded);
    }

    /// <summary>Stores the full blocks in [loaded, upTo) that the session computed exactly.</summary>
    private async Task StorePrefixBlocksAsync(InferenceSession session, int[] tokens, IReadOnlyList<PrefixBlockId> chain, int loaded, int upTo, CancellationToken ct)
    {
        if (!_options.StorePrefixBlocks)
        {
            return;
        }

        var size = PrefixBlockId.BlockTokens;
        for (var b = loaded / size; b < chain.Count && (b + 1) * size <= upTo; b++)
        {
            var key = new CacheKey(CacheEntryKind.PrefixBlock, chain[b].ToString(), "");
            if (await Store.ContainsAsync(key, ct).ConfigureAwait(false))
            {
                continue;
            }

            var entry = ChunkPrecomputer.Export(session, key, b * size, tokens.AsSpan(b * size, size));
            await Store.PutAsync(entry, ct).ConfigureAwait(false);
        }
    }

    private void CheckEntry(CachedKv entry, string what)
    {
        if (entry.ModelFingerprint != Model.Fingerprint.Model || entry.TokenizerFingerprint != Model.Fingerprint.Tokenizer)
        {
            throw new FusionException(FusionError.ModelMismatch,
                $"{what} was computed by model {entry.ModelFingerprint[..12]}… (tokenizer {entry.TokenizerFingerprint[..12]}…), not by this model ({Model.Fingerprint.Model[..12]}…).");
        }

        var c = Model.Config;
        if (entry.LayerCount != c.LayerCount || entry.KvHeads != c.KvHeadCount || entry.HeadDim != c.HeadDim)
        {
            throw new FusionException(FusionError.ModelMismatch, $"{what} has {entry.LayerCount}×{entry.KvHeads}×{entry.HeadDim} KV; the model needs {c.LayerCount}×{c.KvHeadCount}×{c.HeadDim}.");
        }
    }

    private void CheckChunkFits(int[] tokens, int sinkLength)
    {
        if (tokens.Length == 0)
        {
            throw new FusionException(FusionError.InvalidRequest, "A chunk has no tokens.");
        }

        if (tokens.Length + sinkLength > Model.Config.MaxPositionEmbeddings)
        {
            throw new FusionException(FusionError.ContextOverflow,
                $"A chunk of {tokens.Length} tokens (plus a {sinkLength}-token sink) is longer than the model's context of {Model.Config.MaxPositionEmbeddings}.");
        }
    }

    private int[] SinkTokens(SinkKind sink, int[] prefix) => sink switch
    {
        SinkKind.None => [],
        SinkKind.Prefix => prefix,
        SinkKind.Bos => [Model.Config.BosTokenId ?? throw new FusionException(FusionError.InvalidRequest, "The model has no BOS token; use another sink.")],
        _ => throw new FusionException(FusionError.InvalidRequest, $"Unknown sink {sink}."),
    };

    private static string Variant(SinkKind sink, int[] prefix) => sink switch
    {
        SinkKind.Bos => "sink:bos",
        SinkKind.Prefix when prefix.Length > 0 => "sink:prefix:" + PrefixDigest(prefix),
        _ => "sink:none",
    };

    private static string PrefixDigest(int[] prefix)
    {
        var bytes = MemoryMarshal.AsBytes(prefix.AsSpan());
        return Convert.ToHexStringLower(Blake3.Hasher.Hash(bytes).AsSpan())[..16];
    }
}
