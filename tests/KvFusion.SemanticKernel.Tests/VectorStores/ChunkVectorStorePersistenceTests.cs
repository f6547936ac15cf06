using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.Tests.VectorStores;

public sealed class ChunkVectorStorePersistenceTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "kvfusion-vectors-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static ChunkRecord Chunk(string id, string document, float first)
    {
        var vector = new float[384];
        vector[0] = first;
        vector[1] = 1 - first;
        return new ChunkRecord { Id = id, Document = document, Text = "text of " + id, Embedding = vector };
    }

    [Fact]
    public async Task Records_upserts_and_deletes_survive_reopening()
    {
        await using (var store = await ChunkVectorStore.OpenAsync(_directory))
        {
            var chunks = store.GetCollection<string, ChunkRecord>("chunks");
            await chunks.EnsureCollectionExistsAsync();
            await chunks.UpsertAsync([Chunk("a1", "doc-a", 1), Chunk("a2", "doc-a", 0.5f), Chunk("b1", "doc-b", 0)]);
            await chunks.UpsertAsync(Chunk("a2", "doc-a2", 0.9f));
            await chunks.DeleteAsync("b1");
            await store.GetCollection<string, ChunkRecord>("empty").EnsureCollectionExistsAsync();
        }

        await using (var reopened = await ChunkVectorStore.OpenAsync(_directory))
        {
            var chunks = reopened.GetCollection<string, ChunkRecord>("chunks");
            var query = Chunk("q", "", 1).Embedding;
            var results = await chunks.SearchAsync(query, 5, new VectorSearchOptions<ChunkRecord> { IncludeVectors = true }).ToListAsync();

            Assert.Equal(["chunks", "empty"], await reopened.ListCollectionNamesAsync().ToListAsync());
            Assert.Equal(["a1", "a2"], results.Select(r => r.Record.Id));
            Assert.Equal("doc-a2", results[1].Record.Document);
            Assert.Equal(0.9f, results[1].Record.Embedding.Span[0]);
            Assert.Null(await chunks.GetAsync("b1"));
        }
    }

    [Fact]
    public async Task A_deleted_collection_stays_deleted_after_reopening()
    {
        await using (var store = await ChunkVectorStore.OpenAsync(_directory))
        {
            var chunks = store.GetCollection<string, ChunkRecord>("chunks");
            await chunks.EnsureCollectionExistsAsync();
            await chunks.UpsertAsync(Chunk("a1", "doc-a", 1));
            await store.EnsureCollectionDeletedAsync("chunks");
        }

        await using var reopened = await ChunkVectorStore.OpenAsync(_directory);
        Assert.False(await reopened.CollectionExistsAsync("chunks"));
    }

    [Fact]
    public async Task A_corrupt_record_gives_an_error_naming_it()
    {
        await using (var store = await ChunkVectorStore.OpenAsync(_directory))
        {
            var chunks = store.GetCollection<string, ChunkRecord>("chunks");
            await chunks.EnsureCollectionExistsAsync();
            await chunks.UpsertAsync(Chunk("good", "doc", 1));
            store.Database!.Put("chunks", [("broken", "{not json"u8.ToArray())]);
        }

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => ChunkVectorStore.OpenAsync(_directory));

        Assert.Contains("broken", error.Message, StringComparison.Ordinal);
        Assert.Contains("chunks", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultPathFor_puts_vectors_under_the_store_directory()
    {
        Assert.Equal(Path.Combine("data", "vectors"), ChunkVectorStore.DefaultPathFor("data"));
        Assert.Throws<ArgumentException>(() => ChunkVectorStore.DefaultPathFor(" "));
    }

    [Fact]
    public async Task Parallel_upserts_and_searches_stay_consistent()
    {
        await using var store = await ChunkVectorStore.OpenAsync(_directory);
        var chunks = store.GetCollection<string, ChunkRecord>("chunks");
        await chunks.EnsureCollectionExistsAsync();
        var query = Chunk("q", "", 1).Embedding;

        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await chunks.UpsertAsync(Chunk($"w{w}-{i}", $"doc-{w}", i / 50f));
            }
        }));
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                var results = await chunks.SearchAsync(query, 5).ToListAsync();
                for (var r = 1; r < results.Count; r++)
                {
                    Assert.True(results[r - 1].Score >= results[r].Score);
                }
            }
        }));
        await Task.WhenAll(writers.Concat(readers));

        var all = await chunks.GetAsync(c => c.Document != "", 1000).ToListAsync();
        Assert.Equal(200, all.Count);
        Assert.Equal(50, all.Count(c => c.Document == "doc-2"));
    }
}
