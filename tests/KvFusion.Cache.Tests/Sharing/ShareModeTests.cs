using KvFusion.Cache.Chunks;
using KvFusion.Cache.Container;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Sharing;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Tests.Sharing;

/// <summary>
/// <c>share</c> on the real pair of ../shared/models: tiny-pydocs-coder (a fine-tune of tiny-pydocs) computes and
/// stores the chunks, tiny-pydocs fuses them. The two ends of the recompute range are exact: every layer recomputed is
/// the receiver's own full prefill, none recomputed (same model) is reuse.
/// </summary>
public sealed class ShareModeTests : IDisposable
{
    private static readonly string[] Chunks =
    [
        "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.",
        "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.",
    ];

    private const string Prefix = "You answer questions about Python.";
    private const string Query = "Explain how the json module serializes";

    private readonly CpuModelFixture _models = new();

    public void Dispose() => _models.Dispose();

    private TransformerModel Receiver => _models.Tiny;

    private TransformerModel Sender => _models.Model("tiny-pydocs-coder");

    [SkippableFact]
    public async Task Share_recomputing_every_layer_equals_the_receivers_full_prefill()
    {
        var senderStore = new InMemoryKvStore();
        await StoreAsync(Sender, senderStore, []);
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var full = await FuseAsync(receiver, Request(FusionMode.Full, null));
        var shared = await FuseAsync(receiver, Request(FusionMode.Share, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.All(Receiver.Config.LayerCount))));

        Assert.True(MaxAbsDiff(full.Logits, shared.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, shared.Logits)}");
        Assert.Equal(full.Greedy, shared.Greedy);
        Assert.Equal("share:0-5", shared.Report.Mode);
        Assert.All(shared.Report.RecomputedPerLayer, n => Assert.Equal(shared.Report.TotalTokens, n));
        Assert.Equal(0, shared.Report.ReusedTokens);
    }

    [SkippableFact]
    public async Task Share_of_the_same_models_caches_without_recompute_equals_reuse()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(Receiver, store);
        await StoreAsync(Receiver, store, []);

        var reuse = await FuseAsync(engine, Request(FusionMode.Reuse, null));
        var shared = await FuseAsync(engine, Request(FusionMode.Share, SharedCacheSource.From(Receiver, store)));

        Assert.Equal(reuse.Logits, shared.Logits);
        Assert.Equal(reuse.Greedy, shared.Greedy);
        Assert.Equal(reuse.Report.ReusedTokens, shared.Report.ReusedTokens);
        Assert.Equal("share:none", shared.Report.Mode);
    }

    [SkippableFact]
    public async Task A_range_restarted_from_the_same_models_e_cache_equals_its_full_prefill_up_to_fp16()
    {
        // One chunk alone at the start of the prompt, stored without a sink: the fused context is the context it was
        // computed in, so restarting layers 2-5 from its stored hidden state must give the full prefill back.
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(Receiver, store, new FusionEngineOptions { HiddenStateLayers = [2] });
        await engine.PutChunkAsync(ChunkInput.FromText(Chunks[0]), SinkKind.None);
        var alone = new FusionRequest { Chunks = [ChunkInput.FromText(Chunks[0])], Query = Query, Sink = SinkKind.None, ReserveTokens = 16 };

        var full = await FuseAsync(engine, alone with { Mode = FusionMode.Full });
        var shared = await FuseAsync(engine, alone with { Mode = FusionMode.Share, SharedFrom = SharedCacheSource.From(Receiver, store, RecomputeRanges.Parse("2-5")) });

        Assert.True(MaxAbsDiff(full.Logits, shared.Logits) <= 0.05f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, shared.Logits)}");
        Assert.Equal(full.Greedy, shared.Greedy);
        Assert.Equal(shared.Report.QueryTokens, shared.Report.RecomputedPerLayer[1]);
        Assert.Equal(shared.Report.TotalTokens, shared.Report.RecomputedPerLayer[2]);
    }

    [SkippableFact]
    public async Task Recomputing_the_early_layers_of_the_fine_tunes_caches_brings_the_receiver_closer_to_its_full_prefill()
    {
        var senderStore = new InMemoryKvStore();
        await StoreAsync(Sender, senderStore, [3]);
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var full = await FuseAsync(receiver, Request(FusionMode.Full, null));
        var none = await FuseAsync(receiver, Request(FusionMode.Share, SharedCacheSource.From(Sender, senderStore)));
        var early = await FuseAsync(receiver, Request(FusionMode.Share, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.Parse("0-2"))));

        var (klNone, klEarly) = (KullbackLeibler(full.Logits, none.Logits), KullbackLeibler(full.Logits, early.Logits));
        Assert.True(klEarly < klNone, $"KL to the receiver's full prefill: recomputing 0-2 {klEarly:0.0000}, none {klNone:0.0000}");
    }

    [SkippableFact]
    public async Task An_e_cache_round_trips_through_the_container_and_the_store()
    {
        var key = new CacheKey(CacheEntryKind.Chunk, ChunkId.Compute(Sender.Fingerprint, [1, 2, 3]).ToString(), "sink:bos");
        var entry = ChunkPrecomputer.Compute(Sender, key, [Sender.Config.BosTokenId!.Value], Sender.Tokenizer!.Encode(Chunks[0]), [1, 4]);
        Assert.NotNull(entry.HiddenStates);

        foreach (var codec in new[] { "raw", "lz4", "fp8" })
        {
            var read = KvContainerReader.Read(KvContainerWriter.ToArray(entry, KvCodecSpec.Parse(codec)));
            var states = Assert.IsType<KvHiddenStates>(read.HiddenStates);
            Assert.Equal([1, 4], states.Layers);
            for (var i = 0; i < 2; i++)
            {
                // Lossless codecs give the bits back; fp8 (3 mantissa bits) keeps every value within its rounding.
                var error = RelativeError(entry.HiddenStates!.State(i), states.State(i));
                Assert.True(codec == "fp8" ? error < 0.07 : error == 0, $"{codec}: layer {states.Layers[i]} mean relative error {error}");
            }
        }

        var store = new ContainerKvStore(new InMemoryBlobStore(), KvContainerExpectation.FromModel(Sender), new ContainerKvStoreOptions { Codec = KvCodecSpec.Parse("lz4") });
        await store.PutAsync(entry);
        var back = await store.GetAsync(key);
        Assert.Equal([1, 4], back!.HiddenStates!.Layers);
        Assert.Equal(entry.ByteSize, back.ByteSize);
    }

    [SkippableFact]
    public async Task A_range_whose_first_layer_has_no_e_cache_is_refused_by_name()
    {
        var senderStore = new InMemoryKvStore();
        await StoreAsync(Sender, senderStore, [2]);
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var error = await Assert.ThrowsAsync<FusionException>(() =>
            receiver.FuseAsync(Request(FusionMode.Share, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.Parse("3-4")))));

        Assert.Equal(FusionError.MissingHiddenState, error.Error);
        Assert.Contains("layer 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("[2]", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_sender_of_another_family_is_refused_with_the_reason()
    {
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());
        var other = _models.Model("zoo/qwen2-bias");

        var error = await Assert.ThrowsAsync<FusionException>(() =>
            receiver.FuseAsync(Request(FusionMode.Share, SharedCacheSource.From(other, new InMemoryKvStore()))));

        Assert.Equal(FusionError.IncompatibleModels, error.Error);
        Assert.Contains("qwen2-bias", error.Message, StringComparison.Ordinal);
        Assert.Contains("differs", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Blend_over_the_same_models_caches_without_ranges_equals_blend_on_its_own()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(Receiver, store);
        await StoreAsync(Receiver, store, []);

        var own = await FuseAsync(engine, Request(FusionMode.Blend, null));
        var shared = await FuseAsync(engine, Request(FusionMode.Blend, SharedCacheSource.From(Receiver, store)));

        Assert.Equal(own.Logits, shared.Logits);
        Assert.Equal(own.Report.RecomputedPerLayer, shared.Report.RecomputedPerLayer);
        Assert.Equal("blend:0.15+share:none", shared.Report.Mode);
    }

    [SkippableFact]
    public async Task Blend_over_a_senders_caches_with_every_layer_recomputed_equals_the_receivers_full_prefill()
    {
        var senderStore = new InMemoryKvStore();
        await StoreAsync(Sender, senderStore, []);
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var full = await FuseAsync(receiver, Request(FusionMode.Full, null));
        var blended = await FuseAsync(receiver, Request(FusionMode.Blend, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.All(Receiver.Config.LayerCount))));

        Assert.True(MaxAbsDiff(full.Logits, blended.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, blended.Logits)}");
        Assert.Equal(full.Greedy, blended.Greedy);
        Assert.Equal("blend:0.15+share:0-5", blended.Report.Mode);
    }

    [SkippableFact]
    public async Task Blend_over_a_senders_caches_recomputes_the_ranges_for_every_chunk_token_and_its_selection_elsewhere()
    {
        var senderStore = new InMemoryKvStore();
        await StoreAsync(Sender, senderStore, []);
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var shareOnly = await FuseAsync(receiver, Request(FusionMode.Share, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.Parse("0-1"))));
        var both = await FuseAsync(receiver, Request(FusionMode.Blend, SharedCacheSource.From(Sender, senderStore, RecomputeRanges.Parse("0-1"))));

        var chunkTokens = both.Report.ChunkTokens;
        var perLayer = both.Report.RecomputedPerLayer;
        Assert.All(perLayer.Take(2), n => Assert.True(n >= chunkTokens, $"{n} rows in a recomputed range of {chunkTokens} chunk tokens"));
        Assert.All(perLayer.Skip(2), n => Assert.InRange(n, shareOnly.Report.RecomputedPerLayer[^1] + 1, chunkTokens));
        Assert.NotEqual(shareOnly.Logits, both.Logits);
    }

    [SkippableFact]
    public async Task Share_needs_a_sender_that_stored_the_chunks_and_a_sender_needs_share_mode()
    {
        using var receiver = new FusionEngine(Receiver, new InMemoryKvStore());

        var noSender = await Assert.ThrowsAsync<FusionException>(() => receiver.FuseAsync(Request(FusionMode.Share, null)));
        var notShare = await Assert.ThrowsAsync<FusionException>(() => receiver.FuseAsync(Request(FusionMode.Reuse, SharedCacheSource.From(Sender, new InMemoryKvStore()))));
        var notStored = await Assert.ThrowsAsync<FusionException>(() => receiver.FuseAsync(Request(FusionMode.Share, SharedCacheSource.From(Sender, new InMemoryKvStore()))));
        var pastLast = await Assert.ThrowsAsync<FusionException>(() => receiver.FuseAsync(Request(FusionMode.Share, SharedCacheSource.From(Sender, new InMemoryKvStore(), RecomputeRanges.Parse("4-6")))));

        Assert.Equal(FusionError.InvalidRequest, noSender.Error);
        Assert.Equal(FusionError.InvalidRequest, notShare.Error);
        Assert.Equal(FusionError.UnknownChunk, notStored.Error);
        Assert.Contains("tiny-pydocs-coder", notStored.Message, StringComparison.Ordinal);
        Assert.Equal(FusionError.InvalidRequest, pastLast.Error);
    }

    private static async Task StoreAsync(TransformerModel sender, IKvStore store, int[] hiddenStateLayers)
    {
        using var engine = new FusionEngine(sender, store, new FusionEngineOptions { HiddenStateLayers = hiddenStateLayers });
        foreach (var chunk in Chunks)
        {
            await engine.PutChunkAsync(ChunkInput.FromText(chunk));
        }
    }

    private static FusionRequest Request(FusionMode mode, SharedCacheSource? shared) => new()
    {
        Prefix = Prefix,
        Chunks = [.. Chunks.Select(ChunkInput.FromText)],
        Query = Query,
        Mode = mode,
        SharedFrom = shared,
        ReserveTokens = 16,
    };

    internal static async Task<(float[] Logits, int[] Greedy, FusionReport Report)> FuseAsync(FusionEngine engine, FusionRequest request)
    {
        using var context = await engine.FuseAsync(request);
        var logits = (float[])context.Logits.Clone();
        var tokens = new List<int>();
        await foreach (var t in context.GenerateAsync(new SamplingOptions { MaxTokens = 8, StopTokens = [] }))
        {
            if (t.Id >= 0)
            {
                tokens.Add(t.Id);
            }
        }

        return (logits, [.. tokens], context.Report);
    }

    private static double RelativeError(ReadOnlySpan<Half> expected, ReadOnlySpan<Half> actual)
    {
        double error = 0, size = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            error += Math.Abs((double)expected[i] - (double)actual[i]);
            size += Math.Abs((double)expected[i]);
        }

        return error / size;
    }

    /// <summary>KL(p ‖ q) of the softmax distributions of two logit vectors.</summary>
    private static double KullbackLeibler(float[] p, float[] q)
    {
        var (lp, lq) = (LogSoftmax(p), LogSoftmax(q));
        var kl = 0.0;
        for (var i = 0; i < p.Length; i++)
        {
            kl += Math.Exp(lp[i]) * (lp[i] - lq[i]);
        }

        return kl;
    }

    private static double[] LogSoftmax(float[] logits)
    {
        var max = logits.Max();
        var log = Math.Log(logits.Sum(x => Math.Exp(x - max)));
        return [.. logits.Select(x => x - max - log)];
    }

    internal static float MaxAbsDiff(float[] a, float[] b)
    {
        var worst = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        }

        return worst;
    }
}
