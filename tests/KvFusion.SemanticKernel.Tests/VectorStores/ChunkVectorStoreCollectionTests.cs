using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.Tests.VectorStores;

public sealed class ChunkVectorStoreCollectionTests : IAsyncLifetime
{
    private readonly ChunkVectorStore _store = ChunkVectorStore.InMemory();
    private ChunkVectorStoreCollection<string, Hotel> _hotels = null!;

    private static readonly Hotel[] Hotels =
    [
        new() { Id = "h1", City = "Paris", Rating = 5, Tags = ["spa", "pool"], Embedding = new float[] { 1, 0, 0 } },
        new() { Id = "h2", City = "Paris", Rating = 3, Tags = ["pool"], Embedding = new float[] { 1, 1, 0 } },
        new() { Id = "h3", City = "Rome", Rating = 4, Tags = ["gym"], Embedding = new float[] { 0, 1, 0 } },
        new() { Id = "h4", City = "Rome", Rating = 2, Tags = [], Description = "near the station", Embedding = new float[] { 0, 0, 1 } },
        new() { Id = "h5", City = "Oslo", Rating = 5, Tags = ["spa"], Embedding = new float[] { -1, 0, 0 } },
    ];

    public async Task InitializeAsync()
    {
        _hotels = _store.GetCollection<string, Hotel>("hotels");
        await _hotels.EnsureCollectionExistsAsync();
        await _hotels.UpsertAsync(Hotels);
    }

    public Task DisposeAsync()
    {
        _store.Dispose();
        return Task.CompletedTask;
    }

    private async Task<List<VectorSearchResult<Hotel>>> Search(float[] query, int top, VectorSearchOptions<Hotel>? options = null)
        => await _hotels.SearchAsync(new ReadOnlyMemory<float>(query), top, options).ToListAsync();

    [Fact]
    public async Task Search_returns_top_results_best_first_with_cosine_similarity_scores()
    {
        var results = await Search([1, 0, 0], 3);

        Assert.Equal(["h1", "h2", "h3"], results.Select(r => r.Record.Id));
        Assert.Equal(1.0, results[0].Score!.Value, 5);
        Assert.Equal(1 / Math.Sqrt(2), results[1].Score!.Value, 5);
        Assert.Equal(0.0, results[2].Score!.Value, 5);
    }

    [Fact]
    public async Task Search_scores_are_unaffected_by_the_query_vector_length()
    {
        var unit = await Search([0, 1, 0], 5);
        var scaled = await Search([0, 7, 0], 5);

        Assert.Equal(unit.Select(r => (r.Record.Id, Math.Round(r.Score!.Value, 5))), scaled.Select(r => (r.Record.Id, Math.Round(r.Score!.Value, 5))));
    }

    [Fact]
    public async Task Search_with_top_larger_than_the_collection_returns_every_record()
    {
        var results = await Search([1, 0, 0], 50);

        Assert.Equal(5, results.Count);
        Assert.Equal("h5", results[^1].Record.Id);
        Assert.Equal(-1.0, results[^1].Score!.Value, 5);
    }

    [Fact]
    public async Task Skip_drops_the_best_results_and_pages_continue_the_ranking()
    {
        var all = await Search([1, 0.5f, 0], 5);
        var page = await Search([1, 0.5f, 0], 2, new VectorSearchOptions<Hotel> { Skip = 2 });

        Assert.Equal(all.Skip(2).Take(2).Select(r => r.Record.Id), page.Select(r => r.Record.Id));
    }

    [Fact]
    public async Task Search_omits_vectors_unless_asked()
    {
        var without = await Search([1, 0, 0], 1);
        var with = await Search([1, 0, 0], 1, new VectorSearchOptions<Hotel> { IncludeVectors = true });

        Assert.True(without[0].Record.Embedding.IsEmpty);
        Assert.Equal(new float[] { 1, 0, 0 }, with[0].Record.Embedding.ToArray());
        Assert.Equal(["spa", "pool"], without[0].Record.Tags);
    }

    [Fact]
    public async Task Filter_by_equality_keeps_only_matching_records()
    {
        var results = await Search([0, 1, 0.5f], 5, new VectorSearchOptions<Hotel> { Filter = h => h.City == "Rome" });

        Assert.Equal(["h3", "h4"], results.Select(r => r.Record.Id));
    }

    [Fact]
    public async Task Filter_combines_comparisons_with_and_or_and_not()
    {
        var city = "Paris";
        var results = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel>
        {
            Filter = h => (h.City == city && h.Rating >= 4) || (!(h.City == "Paris") && h.Rating < 3) || h.Id == "h5",
        });

        Assert.Equal(["h1", "h4", "h5"], results.Select(r => r.Record.Id).Order());
    }

    [Fact]
    public async Task Filter_supports_not_equal_and_null_comparisons()
    {
        var notParis = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => h.City != "Paris" });
        var described = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => h.Description != null });

        Assert.Equal(["h3", "h4", "h5"], notParis.Select(r => r.Record.Id).Order());
        Assert.Equal(["h4"], described.Select(r => r.Record.Id));
    }

    [Fact]
    public async Task Filter_supports_contains_on_a_list_property_and_on_a_captured_list()
    {
        var cities = new List<string> { "Oslo", "Rome" };
        var spa = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => h.Tags.Contains("spa") });
        var inCities = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => cities.Contains(h.City) });
        var inArray = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => new[] { "Oslo" }.Contains(h.City) });

        Assert.Equal(["h1", "h5"], spa.Select(r => r.Record.Id).Order());
        Assert.Equal(["h3", "h4", "h5"], inCities.Select(r => r.Record.Id).Order());
        Assert.Equal(["h5"], inArray.Select(r => r.Record.Id));
    }

    [Fact]
    public async Task Filter_with_an_unsupported_construct_throws_NotSupportedException_naming_it()
    {
        var error = await Assert.ThrowsAsync<NotSupportedException>(() =>
            Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => h.City.StartsWith('P') }));

        Assert.Contains("StartsWith", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Filter_on_a_vector_property_is_rejected()
    {
        var error = await Assert.ThrowsAsync<NotSupportedException>(() =>
            Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { Filter = h => h.Embedding.Length == 3 }));

        Assert.Contains("Embedding", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Score_threshold_drops_results_below_it()
    {
        var results = await Search([1, 0, 0], 5, new VectorSearchOptions<Hotel> { ScoreThreshold = 0.5 });

        Assert.Equal(["h1", "h2"], results.Select(r => r.Record.Id));
    }

    [Fact]
    public async Task Get_by_key_returns_the_record_and_a_missing_key_returns_null()
    {
        var found = await _hotels.GetAsync("h3");
        var missing = await _hotels.GetAsync("nope");

        Assert.NotNull(found);
        Assert.Equal("Rome", found.City);
        Assert.Equal(4, found.Rating);
        Assert.True(found.Embedding.IsEmpty);
        Assert.Null(missing);
    }

    [Fact]
    public async Task Get_by_key_includes_vectors_when_asked()
    {
        var found = await _hotels.GetAsync("h2", new RecordRetrievalOptions { IncludeVectors = true });

        Assert.Equal(new float[] { 1, 1, 0 }, found!.Embedding.ToArray());
    }

    [Fact]
    public async Task Get_by_keys_returns_the_existing_records_only()
    {
        var found = await _hotels.GetAsync(["h1", "missing", "h4"]).ToListAsync();

        Assert.Equal(["h1", "h4"], found.Select(h => h.Id));
    }

    [Fact]
    public async Task Returned_records_are_copies_that_do_not_change_the_store()
    {
        var first = await _hotels.GetAsync("h1");
        first!.Tags.Add("changed");
        first.City = "Changed";

        var again = await _hotels.GetAsync("h1");

        Assert.Equal("Paris", again!.City);
        Assert.Equal(["spa", "pool"], again.Tags);
    }

    [Fact]
    public async Task Get_with_filter_returns_matches_in_order_with_skip_and_top()
    {
        var byRating = await _hotels.GetAsync(h => h.Rating >= 3, 2, new FilteredRecordRetrievalOptions<Hotel>
        {
            OrderBy = o => o.Descending(h => h.Rating),
            Skip = 1,
        }).ToListAsync();
        var byKey = await _hotels.GetAsync(h => h.City == "Paris", 10).ToListAsync();

        Assert.Equal(["h5", "h3"], byRating.Select(h => h.Id));
        Assert.Equal(["h1", "h2"], byKey.Select(h => h.Id));
    }

    [Fact]
    public async Task Upsert_overwrites_a_record_with_the_same_key()
    {
        await _hotels.UpsertAsync(new Hotel { Id = "h1", City = "Lyon", Rating = 1, Embedding = new float[] { 0, 0, 1 } });

        var updated = await _hotels.GetAsync("h1");
        var nearest = await Search([0, 0, 1], 2);

        Assert.Equal("Lyon", updated!.City);
        Assert.Equal(["h1", "h4"], nearest.Select(r => r.Record.Id).Order());
        Assert.Equal(5, (await _hotels.GetAsync(h => h.Id != "", 100).ToListAsync()).Count);
    }

    [Fact]
    public async Task Delete_removes_records_from_get_and_search()
    {
        await _hotels.DeleteAsync("h1");
        await _hotels.DeleteAsync(["h2", "never-there"]);

        Assert.Null(await _hotels.GetAsync("h1"));
        var results = await Search([1, 0, 0], 5);
        Assert.Equal(["h3", "h4", "h5"], results.Select(r => r.Record.Id).Order());
    }

    [Fact]
    public async Task Upsert_of_a_vector_with_wrong_dimensions_is_rejected()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            _hotels.UpsertAsync(new Hotel { Id = "bad", Embedding = new float[] { 1, 2 } }));

        Assert.Contains("bad", error.Message, StringComparison.Ordinal);
        Assert.Null(await _hotels.GetAsync("bad"));
    }

    [Fact]
    public async Task Search_with_a_vector_of_wrong_dimensions_is_rejected()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Search([1, 0], 1));
    }

    [Fact]
    public async Task Search_with_top_zero_or_negative_skip_is_rejected()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Search([1, 0, 0], 0));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Search([1, 0, 0], 1, new VectorSearchOptions<Hotel> { Skip = -1 }));
    }

    [Fact]
    public async Task Search_accepts_float_arrays_and_embeddings()
    {
        var fromArray = await _hotels.SearchAsync(new float[] { 0, 1, 0 }, 1).ToListAsync();
        var fromEmbedding = await _hotels.SearchAsync(new Embedding<float>(new float[] { 0, 1, 0 }), 1).ToListAsync();

        Assert.Equal("h3", fromArray[0].Record.Id);
        Assert.Equal("h3", fromEmbedding[0].Record.Id);
    }

    [Fact]
    public async Task Search_with_text_and_no_embedding_generator_says_what_to_configure()
    {
        var error = await Assert.ThrowsAsync<NotSupportedException>(() => _hotels.SearchAsync("a text", 1).ToListAsync().AsTask());

        Assert.Contains("EmbeddingGenerator", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Collection_lifecycle_creates_lists_and_deletes()
    {
        var other = _store.GetCollection<string, Hotel>("other");
        Assert.False(await other.CollectionExistsAsync());

        await other.EnsureCollectionExistsAsync();
        await other.EnsureCollectionExistsAsync();
        Assert.True(await _store.CollectionExistsAsync("other"));
        Assert.Equal(["hotels", "other"], await _store.ListCollectionNamesAsync().ToListAsync());

        await _store.EnsureCollectionDeletedAsync("hotels");
        Assert.False(await _hotels.CollectionExistsAsync());
        Assert.Equal(["other"], await _store.ListCollectionNamesAsync().ToListAsync());

        await _hotels.EnsureCollectionExistsAsync();
        Assert.Null(await _hotels.GetAsync("h1"));
    }

    [Fact]
    public async Task Operations_on_a_collection_that_does_not_exist_throw_VectorStoreException()
    {
        var missing = _store.GetCollection<string, Hotel>("missing");

        var error = await Assert.ThrowsAsync<VectorStoreException>(() => missing.UpsertAsync(Hotels[0]));
        Assert.Contains("EnsureCollectionExistsAsync", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<VectorStoreException>(() => missing.GetAsync("h1"));
    }

    [Fact]
    public async Task Views_of_the_same_collection_share_records()
    {
        var again = _store.GetCollection<string, Hotel>("hotels");

        await again.UpsertAsync(new Hotel { Id = "h9", City = "Bern", Embedding = new float[] { 1, 0, 0 } });

        Assert.Equal("Bern", (await _hotels.GetAsync("h9"))!.City);
    }

    [Fact]
    public void Metadata_names_the_store_and_collection()
    {
        var metadata = _hotels.GetService(typeof(VectorStoreCollectionMetadata)) as VectorStoreCollectionMetadata;
        var storeMetadata = _store.GetService(typeof(VectorStoreMetadata)) as VectorStoreMetadata;

        Assert.Equal("kvfusion", metadata!.VectorStoreSystemName);
        Assert.Equal("hotels", metadata.CollectionName);
        Assert.Equal("kvfusion", storeMetadata!.VectorStoreSystemName);
        Assert.Same(_hotels, _hotels.GetService(typeof(IVectorSearchable<Hotel>)));
    }

    [Fact]
    public void Bad_collection_names_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => _store.GetCollection<string, Hotel>(""));
        Assert.Throws<ArgumentException>(() => _store.GetCollection<string, Hotel>("a\0b"));
    }
}
