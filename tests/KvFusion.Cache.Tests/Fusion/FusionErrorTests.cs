using KvFusion.Cache.Chunks;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Support;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>Bad requests fail with a typed error and leave the store as it was.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class FusionErrorTests(TinyModelFixture fixture)
{
    private static async Task<FusionException> Fails(FusionEngine engine, FusionRequest request) =>
        await Assert.ThrowsAsync<FusionException>(() => engine.FuseAsync(request));

    [SkippableFact]
    public async Task Unknown_chunk_id_is_reported_and_nothing_is_stored()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        var unknown = engine.ChunkIdOf([5, 6, 7]);
        var e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromText("some text"), ChunkInput.FromId(unknown)], Query = "q", Mode = FusionMode.Blend });
        Assert.Equal(FusionError.UnknownChunk, e.Error);
        Assert.Contains(unknown.ToString(), e.Message, StringComparison.Ordinal);
        Assert.Equal(0, store.Count);
    }

    [SkippableFact]
    public async Task Chunk_computed_by_another_model_is_a_model_mismatch()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        var id = await engine.PutChunkAsync(ChunkInput.FromText("The os module provides a portable way of using operating system dependent functionality."));
        var key = new CacheKey(CacheEntryKind.Chunk, id.ToString(), "sink:bos");
        var real = (await store.GetAsync(key))!;
        var foreign = new CachedKv(key, new string('a', 64), real.TokenizerFingerprint, [.. real.Tokens], real.LayerCount, real.KvHeads, real.HeadDim,
            real.Keys.ToArray(), real.Values.ToArray());
        await store.PutAsync(foreign);
        var e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromId(id)], Query = "What does os do?", Mode = FusionMode.Reuse });
        Assert.Equal(FusionError.ModelMismatch, e.Error);
        Assert.Equal(1, store.Count);
    }

    [SkippableFact]
    public async Task Empty_query_is_rejected_before_anything_is_computed()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        foreach (var query in new[] { null, "" })
        {
            var e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromText("chunk text")], Query = query, Mode = FusionMode.Blend });
            Assert.Equal(FusionError.EmptyQuery, e.Error);
        }

        Assert.Equal(0, store.Count);
    }

    [SkippableFact]
    public async Task Chunks_beyond_the_context_are_rejected_and_nothing_is_stored()
    {
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        var context = fixture.Model.Config.MaxPositionEmbeddings;
        var tooLong = Enumerable.Range(0, context + 1).Select(i => 100 + (i % 1000)).ToArray();
        var e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromTokens(tooLong)], Query = "q", Mode = FusionMode.Reuse });
        Assert.Equal(FusionError.ContextOverflow, e.Error);

        // Each chunk fits, together they do not.
        var half = Enumerable.Range(0, (context / 2) + 10).Select(i => 100 + (i % 1000)).ToArray();
        e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromText("first"), ChunkInput.FromTokens(half), ChunkInput.FromTokens(half)], Query = "q", Mode = FusionMode.Blend });
        Assert.Equal(FusionError.ContextOverflow, e.Error);
        Assert.Equal(0, store.Count);
    }

    [SkippableFact]
    public async Task Malformed_chunks_are_rejected()
    {
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore());
        var e = await Fails(engine, new FusionRequest { Chunks = [new ChunkInput()], Query = "q" });
        Assert.Equal(FusionError.InvalidRequest, e.Error);
        e = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromTokens([1, 999_999])], Query = "q" });
        Assert.Equal(FusionError.InvalidRequest, e.Error);
    }

    [SkippableTheory]
    [InlineData(-1, false)]
    [InlineData(int.MinValue, false)]
    [InlineData(0, true)]
    public async Task Token_ids_outside_the_vocabulary_are_rejected_before_anything_is_computed(int id, bool pastVocab)
    {
        var vocab = fixture.Model.Config.VocabSize;
        var bad = pastVocab ? vocab + id : id;
        var store = new InMemoryKvStore();
        using var engine = new FusionEngine(fixture.Model, store);
        int[] tokens = [5, 6, bad, 7];

        var put = await Assert.ThrowsAsync<FusionException>(() => engine.PutChunkAsync(ChunkInput.FromTokens(tokens)));
        AssertNames(put, bad, 2);

        var chunk = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromTokens(tokens)], Query = "q", Mode = FusionMode.Reuse });
        AssertNames(chunk, bad, 2);

        var query = await Fails(engine, new FusionRequest { Chunks = [ChunkInput.FromTokens([5, 6])], QueryTokens = [8, bad], Mode = FusionMode.Blend });
        AssertNames(query, bad, 1);
        Assert.Equal(0, store.Count);

        static void AssertNames(FusionException e, int id, int index)
        {
            Assert.Equal(FusionError.InvalidRequest, e.Error);
            Assert.Contains($"token id {id} at index {index}", e.Message, StringComparison.Ordinal);
        }
    }
}
