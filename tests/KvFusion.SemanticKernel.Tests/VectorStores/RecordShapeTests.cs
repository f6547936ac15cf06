using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.Tests.VectorStores;

public sealed class RecordShapeTests : IDisposable
{
    private readonly ChunkVectorStore _store = ChunkVectorStore.InMemory();

    public void Dispose() => _store.Dispose();

    [Fact]
    public async Task Guid_keys_and_euclidean_distance_rank_nearest_first_with_distances_as_scores()
    {
        var points = _store.GetCollection<Guid, EuclideanPoint>("points");
        await points.EnsureCollectionExistsAsync();
        var near = new EuclideanPoint { Id = Guid.NewGuid(), Label = "near", Position = [1, 1] };
        var far = new EuclideanPoint { Id = Guid.NewGuid(), Label = "far", Position = [4, 5] };
        await points.UpsertAsync([far, near]);

        var results = await points.SearchAsync(new float[] { 1, 2 }, 2).ToListAsync();

        Assert.Equal(["near", "far"], results.Select(r => r.Record.Label));
        Assert.Equal(1.0, results[0].Score!.Value, 5);
        Assert.Equal(Math.Sqrt(9 + 9), results[1].Score!.Value, 5);
        Assert.Equal("far", (await points.GetAsync(far.Id))!.Label);
    }

    [Fact]
    public async Task An_empty_auto_generated_Guid_key_gets_a_new_key()
    {
        var points = _store.GetCollection<Guid, EuclideanPoint>("points");
        await points.EnsureCollectionExistsAsync();
        var point = new EuclideanPoint { Label = "new", Position = [0, 0] };

        await points.UpsertAsync(point);

        Assert.NotEqual(Guid.Empty, point.Id);
        Assert.Equal("new", (await points.GetAsync(point.Id))!.Label);
    }

    [Fact]
    public async Task Long_keys_and_dot_product_rank_the_largest_product_first()
    {
        var notes = _store.GetCollection<long, NumberedNote>("notes");
        await notes.EnsureCollectionExistsAsync();
        await notes.UpsertAsync([
            new NumberedNote { Id = 1, Text = "small", Embedding = new Embedding<float>(new float[] { 1, 0 }) },
            new NumberedNote { Id = 2, Text = "large", Embedding = new Embedding<float>(new float[] { 3, 0 }) },
        ]);

        var results = await notes.SearchAsync(new float[] { 2, 0 }, 2, new VectorSearchOptions<NumberedNote> { IncludeVectors = true }).ToListAsync();

        Assert.Equal([2L, 1L], results.Select(r => r.Record.Id));
        Assert.Equal(6.0, results[0].Score!.Value, 5);
        Assert.Equal(new float[] { 3, 0 }, results[0].Record.Embedding!.Vector.ToArray());
    }

    [Fact]
    public void An_unsupported_key_type_is_rejected_naming_the_supported_ones()
    {
        var error = Assert.ThrowsAny<Exception>(() => _store.GetCollection<decimal, DecimalKeyed>("decimals"));

        Assert.True(error is NotSupportedException or InvalidOperationException or ArgumentException, error.GetType().Name);
        Assert.Contains("Decimal", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_key_type_other_than_the_records_is_rejected()
    {
        Assert.ThrowsAny<Exception>(() => _store.GetCollection<Guid, Hotel>("hotels"));
    }

    [Fact]
    public async Task A_definition_describes_a_record_without_attributes()
    {
        var definition = new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty(nameof(PlainNote.Number), typeof(int)),
                new VectorStoreDataProperty(nameof(PlainNote.Body), typeof(string)) { IsIndexed = true },
                new VectorStoreVectorProperty(nameof(PlainNote.Vector), typeof(ReadOnlyMemory<float>), 2)
                {
                    DistanceFunction = DistanceFunction.CosineDistance,
                },
            ],
        };
        var notes = _store.GetCollection<int, PlainNote>("plain", definition);
        await notes.EnsureCollectionExistsAsync();
        await notes.UpsertAsync([
            new PlainNote { Number = 1, Body = "east", Vector = new float[] { 1, 0 } },
            new PlainNote { Number = 2, Body = "north", Vector = new float[] { 0, 1 } },
        ]);

        var results = await notes.SearchAsync(new float[] { 0, 1 }, 2, new VectorSearchOptions<PlainNote> { Filter = n => n.Number > 0 }).ToListAsync();

        Assert.Equal(["north", "east"], results.Select(r => r.Record.Body));
        Assert.Equal(0.0, results[0].Score!.Value, 5);
        Assert.Equal(1.0, results[1].Score!.Value, 5);
    }

    [Fact]
    public async Task A_dynamic_collection_stores_dictionaries()
    {
        var definition = new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty("Id", typeof(string)),
                new VectorStoreDataProperty("Title", typeof(string)),
                new VectorStoreVectorProperty("Vector", typeof(ReadOnlyMemory<float>), 2),
            ],
        };
        var collection = _store.GetDynamicCollection("dynamic", definition);
        await collection.EnsureCollectionExistsAsync();
        await collection.UpsertAsync(new Dictionary<string, object?> { ["Id"] = "d1", ["Title"] = "first", ["Vector"] = new ReadOnlyMemory<float>([1, 0]) });
        await collection.UpsertAsync(new Dictionary<string, object?> { ["Id"] = "d2", ["Title"] = "second", ["Vector"] = new ReadOnlyMemory<float>([0, 1]) });

        var found = await collection.GetAsync("d1");
        var results = await collection.SearchAsync(new float[] { 0, 1 }, 1,
            new VectorSearchOptions<Dictionary<string, object?>> { Filter = r => (string)r["Title"]! != "first" }).ToListAsync();

        Assert.Equal("first", found!["Title"]);
        Assert.Equal("d2", results.Single().Record["Id"]);
    }

    [Fact]
    public async Task A_text_vector_property_is_embedded_by_the_configured_generator_on_upsert_and_search()
    {
        using var generator = new LetterCountEmbeddings();
        using var store = ChunkVectorStore.InMemory(new ChunkVectorStoreOptions { EmbeddingGenerator = generator });
        var notes = store.GetCollection<string, GeneratedNote>("generated");
        await notes.EnsureCollectionExistsAsync();
        await notes.UpsertAsync([
            new GeneratedNote { Id = "a", Body = "mostly a", Embedding = "aaa" },
            new GeneratedNote { Id = "c", Body = "mostly c", Embedding = "ccc" },
        ]);

        var results = await notes.SearchAsync("cc", 1).ToListAsync();

        Assert.Equal("c", results.Single().Record.Id);
        Assert.Equal("ccc", results.Single().Record.Embedding);
        Assert.Equal(1.0, results.Single().Score!.Value, 5);
        await Assert.ThrowsAsync<NotSupportedException>(() => notes.GetAsync("a", new RecordRetrievalOptions { IncludeVectors = true }));
    }

    [Fact]
    public async Task A_definition_level_generator_serves_text_search_on_a_vector_property()
    {
        using var generator = new LetterCountEmbeddings();
        var definition = new VectorStoreCollectionDefinition
        {
            EmbeddingGenerator = generator,
            Properties =
            [
                new VectorStoreKeyProperty(nameof(Hotel.Id), typeof(string)),
                new VectorStoreDataProperty(nameof(Hotel.City), typeof(string)),
                new VectorStoreVectorProperty(nameof(Hotel.Embedding), typeof(ReadOnlyMemory<float>), 3),
            ],
        };
        var hotels = _store.GetCollection<string, Hotel>("with-generator", definition);
        await hotels.EnsureCollectionExistsAsync();
        await hotels.UpsertAsync([
            new Hotel { Id = "x", City = "A", Embedding = new float[] { 1, 0, 0 } },
            new Hotel { Id = "y", City = "B", Embedding = new float[] { 0, 1, 0 } },
        ]);

        var results = await hotels.SearchAsync("bbb", 1).ToListAsync();

        Assert.Equal("y", results.Single().Record.Id);
    }
}
