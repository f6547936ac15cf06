using System.Runtime.InteropServices;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Sharing;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Planning;

/// <summary>
/// Turns requests into plans: tokenizes the segments, finds stored chunks, checks ids, vocabulary and context, and
/// names the store variant of each chunk (its sink). Nothing is computed or stored here.
/// </summary>
internal sealed class FusionPlanner(TransformerModel model, IKvStore store, FusionEngineOptions options, ChunkTokenCatalog catalog)
{
    /// <summary>The id of a chunk's tokens under this model and tokenizer.</summary>
    public ChunkId ChunkIdOf(ReadOnlySpan<int> tokens) => ChunkId.Compute(model.Fingerprint.Model, model.Fingerprint.Tokenizer, tokens);

    /// <summary>Tokenizes text with the model's tokenizer.</summary>
    public int[] Tokenize(string text) =>
        (model.Tokenizer ?? throw new FusionException(FusionError.InvalidRequest, $"{model.Directory} has no tokenizer; pass token ids.")).Encode(text);

    /// <summary>What storing <paramref name="chunk"/> behind the sink would write.</summary>
    public ChunkTarget PlanChunk(ChunkInput chunk, SinkKind? sink, string? prefix)
    {
        var tokens = chunk.Tokens?.ToArray() ?? (chunk.Text is { } t ? Tokenize(t) : throw new FusionException(FusionError.InvalidRequest, "A chunk to store needs text or tokens."));
        CheckVocabulary(tokens, "The chunk");
        var prefixTokens = prefix is null ? [] : Tokenize(prefix);
        CheckVocabulary(prefixTokens, "The prefix");
        var sinkKind = sink ?? options.DefaultSink;
        var sinkTokens = SinkTokens(sinkKind, prefixTokens);
        CheckChunkFits(tokens, sinkTokens.Length);
        var id = ChunkIdOf(tokens);
        return new ChunkTarget(id, new CacheKey(CacheEntryKind.Chunk, id.ToString(), Variant(sinkKind, prefixTokens)), tokens, sinkTokens);
    }

    /// <summary>The store key of a stored chunk behind the sink (default: the engine's).</summary>
    public CacheKey ChunkKeyOf(ChunkId id, SinkKind? sink, string? prefix)
    {
        var prefixTokens = string.IsNullOrEmpty(prefix) ? [] : Tokenize(prefix);
        return new CacheKey(CacheEntryKind.Chunk, id.ToString(), Variant(sink ?? options.DefaultSink, prefixTokens));
    }

    /// <summary>Plans a request; stored chunks named by id are loaded on the way.</summary>
    /// <exception cref="FusionException">Unknown chunk, chunk of another model, empty query, or a prompt beyond the context.</exception>
    public async Task<FusionPlan> PlanAsync(FusionRequest request, CancellationToken ct)
    {
        var query = request.QueryTokens?.ToArray() ?? (string.IsNullOrEmpty(request.Query) ? [] : Tokenize(request.Query));
        if (query.Length == 0)
        {
            throw new FusionException(FusionError.EmptyQuery, "The query is empty.");
        }

        CheckVocabulary(query, "The query");
        var prefix = string.IsNullOrEmpty(request.Prefix) ? [] : Tokenize(request.Prefix);
        CheckVocabulary(prefix, "The prefix");
        var sinkKind = request.Sink ?? options.DefaultSink;
        var sink = SinkTokens(sinkKind, prefix);
        var variant = Variant(sinkKind, prefix);
        var shared = CheckSharing(request);
        var chunks = new List<ChunkPlan>(request.Chunks.Count);
        for (var i = 0; i < request.Chunks.Count; i++)
        {
            var input = request.Chunks[i] ?? throw new FusionException(FusionError.InvalidRequest, $"Chunk {i} is null.");
            chunks.Add(shared is not null
                ? await PlanSharedChunkAsync(shared, input, i, variant, sink.Length, ct).ConfigureAwait(false)
                : input.Id is { } id
                    ? await PlanStoredChunkAsync(id, variant, request.Loading is not null, ct).ConfigureAwait(false)
                    : PlanChunkText(input, i, variant, sink.Length));
        }

        var all = Concatenate(prefix, chunks, query);
        if (all.Length > model.Config.MaxPositionEmbeddings)
        {
            throw new FusionException(FusionError.ContextOverflow,
                $"The fused prompt has {all.Length} tokens (prefix {prefix.Length}, chunks {all.Length - prefix.Length - query.Length}, query {query.Length}); the model's context is {model.Config.MaxPositionEmbeddings}.");
        }

        var modeName = request.Mode switch
        {
            FusionMode.Blend => new FusionModeSpec(FusionMode.Blend, request.Blend.Ratio, null, shared?.Recompute).ToString(),
            FusionMode.Share => $"share:{shared!.Recompute}",
            _ => request.Mode.ToString().ToLowerInvariant(),
        };
        return new FusionPlan
        {
            ModeName = modeName, Prefix = prefix, Chunks = chunks, Query = query, Sink = sink, Tokens = all, SharedFrom = shared,
            Loading = request.Loading, RecomputeRatio = request.Mode == FusionMode.Blend ? request.Blend.Ratio : 0,
        };
    }

    /// <summary>The request's sender, checked: present in share mode (optional in blend) only, of this model's family, its ranges within the layers.</summary>
    private SharedCacheSource? CheckSharing(FusionRequest request)
    {
        var shared = request.SharedFrom;
        if (request.Mode != FusionMode.Share)
        {
            return shared is null
                ? null
                : request.Mode != FusionMode.Blend
                    ? throw new FusionException(FusionError.InvalidRequest, $"SharedFrom names a sender ({shared.SenderName}) but the mode is {request.Mode.ToString().ToLowerInvariant()}; shared caches are used in share and blend modes only.")
                    : CheckSender(shared);
        }

        return shared is null
            ? throw new FusionException(FusionError.InvalidRequest, "Share mode needs SharedFrom: the sender model whose stored caches the chunks are, and the layers to recompute.")
            : CheckSender(shared);
    }

    private SharedCacheSource CheckSender(SharedCacheSource shared)
    {
        var compatibility = ModelCompatibility.Check(shared.SenderConfig, shared.SenderFingerprint, model.Config, model.Fingerprint);
        if (!compatibility.IsCompatible)
        {
            throw new FusionException(FusionError.IncompatibleModels, $"This model cannot use caches of {shared.SenderName}: {compatibility.Reason}.");
        }

        try
        {
            shared.Recompute.CheckFits(model.Config.LayerCount);
        }
        catch (ArgumentException e)
        {
            throw new FusionException(FusionError.InvalidRequest, e.Message);
        }

        return shared;
    }

    /// <summary>A chunk the sender stored: by id, or by text or tokens keyed under the sender's fingerprints.</summary>
    private async Task<ChunkPlan> PlanSharedChunkAsync(SharedCacheSource shared, ChunkInput input, int index, string variant, int sinkLength, CancellationToken ct)
    {
        string id;
        if (input.Id is { } given)
        {
            id = given.ToString();
        }
        else
        {
            var tokens = input.Tokens?.ToArray() ?? (input.Text is { } text ? Tokenize(text) : null)
                ?? throw new FusionException(FusionError.InvalidRequest, $"Chunk {index} has neither an id, text nor tokens.");
            CheckVocabulary(tokens, $"Chunk {index}");
            CheckChunkFits(tokens, sinkLength);
            id = ChunkId.Compute(shared.SenderFingerprint.Model, shared.SenderFingerprint.Tokenizer, tokens).ToString();
        }

        var key = new CacheKey(CacheEntryKind.Chunk, id, variant);
        var entry = await shared.Store.GetAsync(key, ct).ConfigureAwait(false)
            ?? throw new FusionException(FusionError.UnknownChunk,
                $"Chunk {index} ({id[..12]}…, variant {variant}) is not stored by {shared.SenderName}: the sender computes and stores it first (its engine's PutChunkAsync), since the receiver does not have its weights.");
        StoredKvCheck.Check(shared.SenderFingerprint, shared.SenderConfig, entry, $"Chunk {index}", shared.SenderName);
        CheckVocabulary([.. entry.Tokens], $"Chunk {index}");
        foreach (var range in shared.Recompute.Ranges)
        {
            if (range.First > 0 && (entry.HiddenStates is not { } hidden || hidden.IndexOf(range.First) < 0))
            {
                throw new FusionException(FusionError.MissingHiddenState,
                    $"Chunk {index} ({id[..12]}…) of {shared.SenderName} has no E-cache for layer {range.First}, where recompute range {range} starts; "
                    + $"it was stored with E-cache layers [{string.Join(", ", entry.HiddenStates?.Layers ?? [])}]. Store the sender's chunks with those layers (FusionEngineOptions.HiddenStateLayers).");
            }
        }

        return new ChunkPlan { Tokens = [.. entry.Tokens], Key = key, Entry = entry };
    }

    private async Task<ChunkPlan> PlanStoredChunkAsync(ChunkId id, string variant, bool deferRead, CancellationToken ct)
    {
        var key = new CacheKey(CacheEntryKind.Chunk, id.ToString(), variant);

        // With a loading goal, a chunk whose tokens are known is read later, at the level the controller picks.
        if (deferRead && catalog.TryGet(key, out var known))
        {
            return new ChunkPlan { Tokens = known, Key = key, ById = true };
        }

        var entry = await store.GetAsync(key, ct).ConfigureAwait(false)
            ?? throw UnknownChunk(id, variant);
        StoredKvCheck.Check(model, entry, $"Chunk {id}");
        int[] tokens = [.. entry.Tokens];
        if (entry.HasTokenIds)
        {
            catalog.Add(key, tokens);
        }

        return new ChunkPlan { Tokens = tokens, Key = key, Entry = entry, ById = true };
    }

    /// <summary>The error for a chunk named by id that is not stored.</summary>
    public static FusionException UnknownChunk(ChunkId id, string variant) =>
        new(FusionError.UnknownChunk, $"Chunk {id} is not stored (variant {variant}); store it first or send its text.");

    private ChunkPlan PlanChunkText(ChunkInput input, int index, string variant, int sinkLength)
    {
        var tokens = input.Tokens?.ToArray() ?? (input.Text is { } text ? Tokenize(text) : null)
            ?? throw new FusionException(FusionError.InvalidRequest, $"Chunk {index} has neither an id, text nor tokens.");
        if (tokens.Length == 0)
        {
            throw new FusionException(FusionError.InvalidRequest, $"Chunk {index} has no tokens.");
        }

        CheckVocabulary(tokens, $"Chunk {index}");

        CheckChunkFits(tokens, sinkLength);
        return new ChunkPlan { Tokens = tokens, Key = new CacheKey(CacheEntryKind.Chunk, ChunkIdOf(tokens).ToString(), variant) };
    }

    /// <summary>Lays the segments out in prompt order and gives each chunk its first slot.</summary>
    private static int[] Concatenate(int[] prefix, List<ChunkPlan> chunks, int[] query)
    {
        var all = new int[prefix.Length + chunks.Sum(c => c.Tokens.Length) + query.Length];
        prefix.CopyTo(all, 0);
        var at = prefix.Length;
        foreach (var c in chunks)
        {
            c.Slot = at;
            c.Tokens.CopyTo(all, at);
            at += c.Tokens.Length;
        }

        query.CopyTo(all, at);
        return all;
    }

    /// <summary>
    /// Every token id given by a caller or a tokenizer passes here before it can reach a backend's embedding, where an
    /// id outside the vocabulary fails late (or, on a GPU, as a deferred kernel error another request would see).
    /// </summary>
    private void CheckVocabulary(int[] tokens, string what)
    {
        var vocab = model.Config.VocabSize;
        for (var i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
            {
                throw new FusionException(FusionError.InvalidRequest, $"{what} has token id {tokens[i]} at index {i}, outside the vocabulary of {vocab} (ids 0 to {vocab - 1}).");
            }
        }
    }

    private void CheckChunkFits(int[] tokens, int sinkLength)
    {
        if (tokens.Length == 0)
        {
            throw new FusionException(FusionError.InvalidRequest, "A chunk has no tokens.");
        }

        if (tokens.Length + sinkLength > model.Config.MaxPositionEmbeddings)
        {
            throw new FusionException(FusionError.ContextOverflow,
                $"A chunk of {tokens.Length} tokens (plus a {sinkLength}-token sink) is longer than the model's context of {model.Config.MaxPositionEmbeddings}.");
        }
    }

    private int[] SinkTokens(SinkKind sink, int[] prefix) => sink switch
    {
        SinkKind.None => [],
        SinkKind.Prefix => prefix,
        SinkKind.Bos => [model.Config.BosTokenId ?? throw new FusionException(FusionError.InvalidRequest, "The model has no BOS token; use another sink.")],
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
