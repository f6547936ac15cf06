using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// The service's own REST API over a real socket, as a client in another process sees it: a document streamed with
/// progress, a chunk's KV downloaded, deleted and uploaded again, and a chat fused from a document's chunks.
/// </summary>
[Collection(KeyedServers.Name)]
public sealed class RestApiTests(KeyedServer fixture)
{
    [SkippableFact]
    public async Task A_streamed_document_reports_progress_per_chunk_then_the_document_which_is_found_again_by_id()
    {
        using var http = fixture.Server.CreateHttpClient(KeyedServer.ApiKey);
        var text = DocumentText();

        var (progress, document) = await CreateDocumentStreamedAsync(http, new CreateDocumentRequest { Text = text, Name = "e2e", ChunkTokens = 32, Stream = true });

        Assert.True(document.Chunks.Count >= 3, $"{document.Chunks.Count} chunks");
        Assert.Equal(document.Chunks.Count, progress.Count);
        Assert.Equal(Enumerable.Range(1, document.Chunks.Count), progress.Select(p => p.Done));
        Assert.All(progress, p => Assert.Equal(document.Chunks.Count, p.Total));
        Assert.Equal(document.Chunks.Count, progress[^1].Computed);
        Assert.Equal(document.Chunks.Sum(c => c.Tokens), document.Tokens);
        Assert.All(document.Chunks, c => Assert.InRange(c.Tokens, 1, 32));

        var found = await http.GetFromJsonAsync($"v1/documents/{document.Id}", KvFusionJsonContext.Default.DocumentInfo);
        Assert.Equal(document.Chunks.Select(c => c.Id), found!.Chunks.Select(c => c.Id));
        Assert.Equal("e2e", found.Name);

        // The same text again: the same document, nothing computed.
        var (again, same) = await CreateDocumentStreamedAsync(http, new CreateDocumentRequest { Text = text, ChunkTokens = 32, Stream = true });
        Assert.Equal(document.Id, same.Id);
        Assert.Equal(0, again[^1].Computed);
    }

    [SkippableFact]
    public async Task A_chunks_kv_downloaded_then_deleted_can_be_uploaded_again_and_is_the_same_chunk()
    {
        using var http = fixture.Server.CreateHttpClient(KeyedServer.ApiKey);
        var chunk = await Http.CreateChunkAsync(http, Http.UniqueText("Uploading caches."));

        using var download = await http.GetAsync(new Uri($"v1/chunks/{chunk.Id}/kv", UriKind.Relative));
        await Http.EnsureAsync(download, HttpStatusCode.OK);
        Assert.Equal("application/octet-stream", download.Content.Headers.ContentType?.MediaType);
        var blob = await download.Content.ReadAsByteArrayAsync();
        Assert.Equal(chunk.Bytes, blob.Length);

        using (var deleted = await http.DeleteAsync(new Uri($"v1/chunks/{chunk.Id}", UriKind.Relative)))
        {
            await Http.EnsureAsync(deleted, HttpStatusCode.NoContent);
        }

        using (var gone = await http.GetAsync(new Uri($"v1/chunks/{chunk.Id}", UriKind.Relative)))
        {
            await Http.EnsureAsync(gone, HttpStatusCode.NotFound);
            Assert.Equal("application/problem+json", gone.Content.Headers.ContentType?.MediaType);
        }

        using var body = new ByteArrayContent(blob);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var upload = await http.PutAsync(new Uri($"v1/chunks/{chunk.Id}/kv", UriKind.Relative), body);
        await Http.EnsureAsync(upload, HttpStatusCode.Created);
        var uploaded = await upload.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.ChunkInfo);
        Assert.Equal(chunk.Id, uploaded!.Id);
        Assert.Equal(chunk.Tokens, uploaded.Tokens);
        Assert.True(uploaded.Created);

        var again = await http.GetFromJsonAsync($"v1/chunks/{chunk.Id}", KvFusionJsonContext.Default.ChunkInfo);
        Assert.Equal(chunk.Tokens, again!.Tokens);
    }

    [SkippableFact]
    public async Task A_kv_container_that_does_not_hash_to_the_id_is_refused_with_422()
    {
        using var http = fixture.Server.CreateHttpClient(KeyedServer.ApiKey);
        var chunk = await Http.CreateChunkAsync(http, Http.UniqueText("One chunk."));
        var other = await Http.CreateChunkAsync(http, Http.UniqueText("Another chunk."));
        var blob = await http.GetByteArrayAsync(new Uri($"v1/chunks/{chunk.Id}/kv", UriKind.Relative));

        using var body = new ByteArrayContent(blob);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var upload = await http.PutAsync(new Uri($"v1/chunks/{other.Id}/kv", UriKind.Relative), body);

        await Http.EnsureAsync(upload, HttpStatusCode.UnprocessableEntity);
    }

    [SkippableFact]
    public async Task A_chat_fused_from_a_documents_chunks_serves_their_tokens_from_the_store()
    {
        using var http = fixture.Server.CreateHttpClient(KeyedServer.ApiKey);
        using var created = await http.PostAsJsonAsync(new Uri("v1/documents", UriKind.Relative), new CreateDocumentRequest { Text = DocumentText(), ChunkTokens = 48 }, KvFusionJsonContext.Default.CreateDocumentRequest);
        await Http.EnsureAsync(created, HttpStatusCode.Created);
        var document = (await created.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.DocumentInfo))!;

        var completion = await Http.ChatAsync(http, new ChatCompletionRequest
        {
            Messages = [new ChatMessage { Role = "system", Content = "Answer from the documentation." }, new ChatMessage { Role = "user", Content = "What does sorted() return?" }],
            MaxTokens = 8,
            Temperature = 0,
            Kvfusion = new FusionOptions { Chunks = [.. document.Chunks.Select(c => c.Id)], Mode = "blend" },
        });

        Assert.Equal(document.Tokens, completion.Usage.PromptTokensDetails.CachedTokens);
        Assert.Equal(document.Tokens, completion.Kvfusion.ReusedTokens);
        Assert.Equal(0, completion.Kvfusion.ChunksPrecomputed);
        Assert.True(completion.Usage.PromptTokens > document.Tokens);
        Assert.True(completion.Kvfusion.TtftMs > 0);
        Assert.NotNull(Assert.Single(completion.Choices).Message.Content);

        // What the fusion did also reaches the Prometheus scrape an operator would graph.
        var metrics = await http.GetStringAsync(new Uri("metrics", UriKind.Relative));
        Assert.Contains("kvfusion_tokens_reused", metrics, StringComparison.Ordinal);
        Assert.Contains("kvfusion_ttft", metrics, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Requests_without_the_key_are_401_problems_and_the_health_endpoints_stay_open()
    {
        using var anonymous = fixture.Server.CreateHttpClient();

        using var models = await anonymous.GetAsync(new Uri("v1/models", UriKind.Relative));
        await Http.EnsureAsync(models, HttpStatusCode.Unauthorized);
        Assert.Equal("application/problem+json", models.Content.Headers.ContentType?.MediaType);

        var ready = await anonymous.GetFromJsonAsync("readyz", KvFusionJsonContext.Default.ReadinessReport);
        Assert.Equal("ready", ready!.Status);
        Assert.Equal(KeyedServer.ModelId, ready.Model);
        Assert.Contains(ready.Tiers, t => t.Up);
    }

    /// <summary>POST /v1/documents with stream: true, read as server-sent events.</summary>
    internal static async Task<(List<DocumentProgress> Progress, DocumentInfo Document)> CreateDocumentStreamedAsync(HttpClient http, CreateDocumentRequest request)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri("v1/documents", UriKind.Relative))
        {
            Content = JsonContent.Create(request, KvFusionJsonContext.Default.CreateDocumentRequest),
        };
        using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead);
        await Http.EnsureAsync(response, HttpStatusCode.OK);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);

        var progress = new List<DocumentProgress>();
        DocumentInfo? document = null;
        string? eventName = null;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(), Encoding.UTF8);
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                eventName = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var json = line["data: ".Length..];
                switch (eventName)
                {
                    case "progress":
                        progress.Add(JsonSerializer.Deserialize(json, KvFusionJsonContext.Default.DocumentProgress)!);
                        break;
                    case "document":
                        document = JsonSerializer.Deserialize(json, KvFusionJsonContext.Default.DocumentInfo);
                        break;
                    default:
                        Assert.Fail($"unexpected event '{eventName}': {json}");
                        break;
                }
            }
        }

        Assert.NotNull(document);
        return (progress, document);
    }

    /// <summary>A few paragraphs, tagged with a run id throughout, so no chunk of it is stored before (chunk ids hash the tokens).</summary>
    internal static string DocumentText()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        string[] lines =
        [
            "sorted(iterable, /, *, key=None, reverse=False) returns a new sorted list from the items in iterable.",
            "The key argument specifies a function of one argument that is used to extract a comparison key from each element.",
            "The reverse argument is a boolean value; if set to True, the list elements are sorted as if each comparison were reversed.",
            "list.sort() sorts the list in place and returns None; it is stable, so items that compare equal keep their order.",
            "len(s) returns the length (the number of items) of an object: a sequence such as a string, bytes, tuple, list or range.",
            "dict.items() returns a new view of the dictionary's items, (key, value) pairs, which reflects later changes.",
        ];
        // The tag every six words: any chunk of 32 tokens or more holds one, wherever the chunker cuts.
        return string.Join('\n', lines.Select(l => string.Join(' ', l.Split(' ').Chunk(6).Select(words => $"[{run}] {string.Join(' ', words)}"))));
    }
}
