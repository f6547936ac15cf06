using System.Net;
using KvFusion.Client;
using KvFusion.Client.Contracts;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// KvFusion.Client, the typed client, against <c>kvfusion serve</c> in another process: every call over a real
/// socket, with the API key checked.
/// </summary>
[Collection(KeyedServers.Name)]
public sealed class KvFusionClientTests(KeyedServer fixture)
{
    [SkippableFact]
    public async Task A_document_reports_progress_per_chunk_and_is_found_again()
    {
        using var client = Client();
        var progress = new List<DocumentProgress>();

        var document = await client.CreateDocumentAsync(
            new CreateDocumentRequest { Text = RestApiTests.DocumentText(), Name = "client", ChunkTokens = 32 },
            new SynchronousProgress<DocumentProgress>(progress.Add));

        Assert.True(document.Chunks.Count >= 3, $"{document.Chunks.Count} chunks");
        Assert.Equal(Enumerable.Range(1, document.Chunks.Count), progress.Select(p => p.Done));
        Assert.All(progress, p => Assert.Equal(document.Chunks.Count, p.Total));
        Assert.Equal(document.Chunks.Count, progress[^1].Computed);

        var found = await client.GetDocumentAsync(document.Id);
        Assert.Equal(document.Chunks.Select(c => c.Id), found.Chunks.Select(c => c.Id));
        Assert.Equal("client", found.Name);
    }

    [SkippableFact]
    public async Task A_chunks_kv_downloaded_deleted_and_uploaded_again_is_the_same_chunk()
    {
        using var client = Client();
        var chunk = await client.CreateChunkAsync(Http.UniqueText("The typed client moves caches."));

        var blob = await client.GetChunkKvAsync(chunk.Id);
        Assert.Equal(chunk.Bytes, blob.Length);

        Assert.True(await client.DeleteChunkAsync(chunk.Id));
        var missing = await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetChunkAsync(chunk.Id));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.False(await client.DeleteChunkAsync(chunk.Id), "a second delete finds nothing");

        var uploaded = await client.UploadChunkKvAsync(chunk.Id, blob);
        Assert.Equal(chunk.Id, uploaded.Id);
        Assert.Equal(chunk.Tokens, uploaded.Tokens);
        Assert.True(uploaded.Created);
        Assert.Equal(chunk.Tokens, (await client.GetChunkAsync(chunk.Id)).Tokens);
    }

    [SkippableFact]
    public async Task A_chat_fused_from_a_documents_chunks_serves_their_tokens_from_the_store_whole_and_streamed()
    {
        using var client = Client();
        var document = await client.CreateDocumentAsync(new CreateDocumentRequest { Text = RestApiTests.DocumentText(), ChunkTokens = 48 });
        var request = new ChatCompletionRequest
        {
            Messages = [new ChatMessage { Role = "user", Content = "What does sorted() return?" }],
            MaxTokens = 6,
            Temperature = 0,
            Kvfusion = new FusionOptions { Chunks = [.. document.Chunks.Select(c => c.Id)], Mode = "blend" },
        };

        var whole = await client.ChatCompletionAsync(request);
        Assert.Equal(document.Tokens, whole.Usage.PromptTokensDetails.CachedTokens);
        Assert.Equal(0, whole.Kvfusion.ChunksPrecomputed);
        Assert.False(string.IsNullOrEmpty(Assert.Single(whole.Choices).Message.Content));

        var chunks = new List<ChatCompletionChunk>();
        await foreach (var c in client.StreamChatCompletionAsync(request with { StreamOptions = new StreamOptions { IncludeUsage = true } }))
        {
            chunks.Add(c);
        }

        Assert.NotNull(chunks[0].Kvfusion);
        Assert.Equal(document.Tokens, chunks[^1].Usage!.PromptTokensDetails.CachedTokens);
        Assert.Single(chunks, c => c.Choices.Count == 1 && c.Choices[0].FinishReason is not null);

        // Greedy decoding over the same fused prompt: the stream says what the whole answer said.
        Assert.Equal(whole.Choices[0].Message.Content, string.Concat(chunks.SelectMany(c => c.Choices).Select(c => c.Delta.Content)));
    }

    [SkippableFact]
    public async Task Models_and_readiness_come_back_typed_and_a_wrong_key_is_a_401_exception()
    {
        using var client = Client();

        var models = await client.ListModelsAsync();
        Assert.Equal(KeyedServer.ModelId, Assert.Single(models.Data).Id);
        Assert.Equal("ready", (await client.GetReadinessAsync()).Status);

        using var stranger = new KvFusionClient(new KvFusionClientOptions { BaseAddress = fixture.Server.BaseAddress, ApiKey = "not-the-key-0123456789abcdef" });
        var e = await Assert.ThrowsAsync<KvFusionApiException>(() => stranger.ListModelsAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
    }

    private KvFusionClient Client() => new(new KvFusionClientOptions { BaseAddress = fixture.Server.BaseAddress, ApiKey = KeyedServer.ApiKey });

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool, so a test could read too early).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
