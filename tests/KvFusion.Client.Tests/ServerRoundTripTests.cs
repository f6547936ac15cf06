using System.Net;
using System.Security.Cryptography;
using System.Text;
using KvFusion.Client.Contracts;

namespace KvFusion.Client.Tests;

/// <summary>One real server (WebApplicationFactory over KvFusion.Server with tiny-pydocs) for the round-trip tests.</summary>
public sealed class ServerFixture : IDisposable
{
    private readonly Lock _gate = new();
    private KvFusionServerFactory? _factory;
    private HttpClient? _http;
    private KvFusionClient? _client;

    /// <summary>The client of the one server (started on first use); skips the test when ../shared (the model) is absent.</summary>
    public KvFusionClient Client
    {
        get
        {
            Skip.IfNot(SharedData.IsPresent, "../shared/models/tiny-pydocs is not present beside the checkout: the round trips need the real server and its model");
            lock (_gate)
            {
                if (_client is null)
                {
                    _factory = new KvFusionServerFactory();
                    _http = _factory.CreateHttpClient();
                    _client = new KvFusionClient(_http);
                }

                return _client;
            }
        }
    }

    public void Dispose()
    {
        _client?.Dispose();
        _http?.Dispose();
        _factory?.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class ServerGroup : ICollectionFixture<ServerFixture>
{
    public const string Name = "KvFusion server";
}

/// <summary>The client against the real server: chunks, KV, pins, documents, completions, models and health.</summary>
[Collection(ServerGroup.Name)]
public sealed class ServerRoundTripTests(ServerFixture server)
{
    private static string Unique(string text) => $"{text} ({Guid.NewGuid():N})";

    private static string RandomId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    private static async Task<List<T>> CollectAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items)
        {
            list.Add(item);
        }

        return list;
    }

    [SkippableFact]
    public async Task A_chunk_round_trips_through_create_get_download_upload_and_delete()
    {
        var client = server.Client;
        var text = Unique("The json module encodes Python objects as JSON text and decodes them back.");

        var created = await client.CreateChunkAsync(text);
        Assert.True(created.Created);
        Assert.Matches("^[0-9a-f]{64}$", created.Id);
        Assert.True(created.Tokens > 0);
        Assert.False((await client.CreateChunkAsync(text)).Created);

        var got = await client.GetChunkAsync(created.Id.ToUpperInvariant());
        Assert.Equal(created.Id, got.Id);
        Assert.Equal(created.Tokens, got.Tokens);

        var raw = await client.GetChunkKvAsync(created.Id, "raw");
        Assert.NotEmpty(raw);
        using var lz4 = new MemoryStream();
        var lz4Bytes = await client.DownloadChunkKvAsync(created.Id, lz4, "lz4");
        Assert.Equal(lz4.Length, lz4Bytes);
        Assert.True(lz4Bytes > 0);

        var again = await client.UploadChunkKvAsync(created.Id, raw);
        Assert.False(again.Created);
        Assert.Equal(created.Id, again.Id);

        var wrongId = await Assert.ThrowsAsync<KvFusionApiException>(() => client.UploadChunkKvAsync(RandomId(), raw));
        Assert.InRange((int)wrongId.StatusCode, 400, 499);
        Assert.NotNull(wrongId.Title);

        Assert.True(await client.DeleteChunkAsync(created.Id));
        var missing = await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetChunkAsync(created.Id));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.StartsWith("404 ", missing.Message, StringComparison.Ordinal);
        Assert.False(await client.DeleteChunkAsync(created.Id));

        lz4.Position = 0;
        var restored = await client.UploadChunkKvAsync(created.Id, lz4);
        Assert.True(restored.Created);
        Assert.Equal(created.Tokens, restored.Tokens);
        Assert.Equal(created.Id, (await client.GetChunkAsync(created.Id)).Id);
    }

    [SkippableFact]
    public async Task A_chunk_is_pinned_and_unpinned()
    {
        var client = server.Client;
        var chunk = await client.CreateChunkAsync(Unique("A list comprehension builds a list from an iterable."));

        var pinned = await client.PinChunkAsync(chunk.Id, TimeSpan.FromMinutes(5));
        Assert.NotNull(pinned.PinnedUntil);
        Assert.True(pinned.PinnedUntil > DateTimeOffset.UtcNow.AddMinutes(4));

        Assert.True(await client.UnpinChunkAsync(chunk.Id));
        Assert.Null((await client.GetChunkAsync(chunk.Id)).PinnedUntil);
        Assert.False(await client.UnpinChunkAsync(chunk.Id));
        Assert.False(await client.UnpinChunkAsync(RandomId()));
    }

    [SkippableFact]
    public async Task A_document_reports_progress_and_is_stored()
    {
        var client = server.Client;
        var text = Unique(string.Join(' ', Enumerable.Repeat("The os module reads environment variables and walks directories.", 12)));
        var progress = new ListProgress<DocumentProgress>();

        var document = await client.CreateDocumentAsync(new CreateDocumentRequest { Text = text, Name = "os", ChunkTokens = 32 }, progress);

        Assert.True(document.Chunks.Count > 1);
        Assert.NotEmpty(progress.Items);
        Assert.Equal(document.Chunks.Count, progress.Items[^1].Total);
        Assert.Equal(progress.Items[^1].Total, progress.Items[^1].Done);
        Assert.Equal("os", document.Name);

        var got = await client.GetDocumentAsync(document.Id);
        Assert.Equal(document.Id, got.Id);
        Assert.Equal(document.Chunks.Select(c => c.Id), got.Chunks.Select(c => c.Id));

        var whole = await client.CreateDocumentAsync(new CreateDocumentRequest { Text = text, Name = "os", ChunkTokens = 32 });
        Assert.Equal(document.Id, whole.Id);
    }

    [SkippableFact]
    public async Task A_chat_completion_fuses_stored_chunks_whole_and_streamed_alike()
    {
        var client = server.Client;
        var chunks = await client.CreateChunksAsync(new CreateChunksRequest
        {
            Chunks = [new ChunkSource { Text = "The json module encodes objects." }, new ChunkSource { Text = "The re module matches regular expressions." }],
        });
        var request = new ChatCompletionRequest
        {
            Messages = [new ChatMessage { Role = "user", Content = "What does the json module do?" }],
            MaxTokens = 8,
            Temperature = 0,
            Kvfusion = new FusionOptions { Chunks = [.. chunks.Chunks.Select(c => c.Id)] },
        };

        var whole = await client.ChatCompletionAsync(request);
        var choice = Assert.Single(whole.Choices);
        Assert.Contains(choice.FinishReason, new[] { "stop", "length" });
        Assert.True(whole.Usage.PromptTokens > 0);
        Assert.True(whole.Usage.CompletionTokens is > 0 and <= 8);
        Assert.True(whole.Kvfusion.ReusedTokens > 0);

        var streamed = await CollectAsync(client.StreamChatCompletionAsync(request with { StreamOptions = new StreamOptions { IncludeUsage = true } }));
        Assert.NotEmpty(streamed);
        Assert.All(streamed, c => Assert.Equal(streamed[0].Id, c.Id));
        var text = string.Concat(streamed.SelectMany(c => c.Choices).Select(c => c.Delta.Content));
        Assert.Equal(choice.Message.Content, text);
        Assert.NotNull(streamed[^1].Usage);
        Assert.Equal(whole.Usage.CompletionTokens, streamed[^1].Usage!.CompletionTokens);
        Assert.Contains(streamed, c => c.Kvfusion is not null);
    }

    [SkippableFact]
    public async Task A_text_completion_is_the_same_whole_and_streamed()
    {
        var client = server.Client;
        var request = new CompletionRequest { Prompt = "import json\n", MaxTokens = 6, Temperature = 0 };

        var whole = await client.CompletionAsync(request);
        var streamed = await CollectAsync(client.StreamCompletionAsync(request));

        Assert.Equal(Assert.Single(whole.Choices).Text, string.Concat(streamed.SelectMany(c => c.Choices).Select(c => c.Text)));
        Assert.NotNull(streamed.SelectMany(c => c.Choices).Last().FinishReason);
    }

    [SkippableFact]
    public async Task Models_health_and_readiness_answer()
    {
        var client = server.Client;

        var models = await client.ListModelsAsync();
        var model = Assert.Single(models.Data);
        Assert.Equal("tiny-pydocs", model.Id);

        Assert.True(await client.IsAliveAsync());
        var readiness = await client.GetReadinessAsync();
        Assert.Equal("ready", readiness.Status);
        Assert.NotEmpty(readiness.Tiers);
    }

    private sealed class ListProgress<T> : IProgress<T>
    {
        public List<T> Items { get; } = [];

        public void Report(T value) => Items.Add(value);
    }
}
