using System.Net;
using System.Text.Json;
using KvFusion.Client.Contracts;
using KvFusion.Client.Tests.Support;

namespace KvFusion.Client.Tests;

/// <summary>What the client puts on the wire: ids, paths, queries, headers and the stream flag.</summary>
public sealed class RequestTests
{
    private const string UpperId = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";

    [Fact]
    public async Task An_uppercase_id_is_sent_in_lowercase()
    {
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, Payloads.Chunk()));
        using (client)
        {
            var chunk = await client.GetChunkAsync(UpperId);

            Assert.Equal("http://kvfusion.test/v1/chunks/" + Payloads.ChunkId, handler.Last.Uri.AbsoluteUri);
            Assert.Equal(Payloads.ChunkId, chunk.Id);
            Assert.Equal(12, chunk.Tokens);
            Assert.True(chunk.Created);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("0123")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/")]
    [InlineData("0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef")]
    [InlineData("０123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public async Task An_id_that_is_not_64_hex_digits_is_refused_before_anything_is_sent(string id)
    {
        var (client, handler) = CannedHandler.Client(_ => throw new InvalidOperationException("nothing should be sent"));
        using (client)
        {
            var e = Assert.Throws<ArgumentException>(() => { _ = client.GetChunkAsync(id); });
            Assert.Equal("id", e.ParamName);
            Assert.Contains("64 hex digits", e.Message, StringComparison.Ordinal);

            await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadChunkKvAsync(id, Stream.Null));
            await Assert.ThrowsAsync<ArgumentException>(() => client.GetChunkKvAsync(id));
            Assert.Throws<ArgumentException>(() => { _ = client.UploadChunkKvAsync(id, ReadOnlyMemory<byte>.Empty); });
            Assert.Throws<ArgumentException>(() => { _ = client.DeleteChunkAsync(id); });
            Assert.Throws<ArgumentException>(() => { _ = client.PinChunkAsync(id, TimeSpan.FromMinutes(1)); });
            Assert.Throws<ArgumentException>(() => { _ = client.UnpinChunkAsync(id); });
            Assert.Throws<ArgumentException>(() => { _ = client.GetDocumentAsync(id); });
            Assert.Empty(handler.Requests);
        }
    }

    [Fact]
    public void A_null_id_is_an_ArgumentNullException()
    {
        var (client, _) = CannedHandler.Client(_ => throw new InvalidOperationException("nothing should be sent"));
        using (client)
        {
            Assert.Throws<ArgumentNullException>(() => { _ = client.GetChunkAsync(null!); });
            Assert.Throws<ArgumentNullException>(() => { _ = client.GetDocumentAsync(null!); });
        }
    }

    [Fact]
    public async Task Tenants_and_codecs_are_query_escaped()
    {
        var (client, handler) = CannedHandler.Client(request => request.Method == HttpMethod.Get && request.RequestUri!.AbsolutePath.EndsWith("/kv", StringComparison.Ordinal)
            ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent([1, 2, 3]) }
            : CannedHandler.Json(HttpStatusCode.OK, Payloads.Chunk()));
        using (client)
        {
            await client.GetChunkAsync(Payloads.ChunkId, tenant: "a b&c=d/é");
            Assert.Equal("?tenant=a%20b%26c%3Dd%2F%C3%A9", handler.Last.Uri.Query);

            await client.GetChunkKvAsync(Payloads.ChunkId, codec: "cachegen:2");
            Assert.Equal("/v1/chunks/" + Payloads.ChunkId + "/kv", handler.Last.Uri.AbsolutePath);
            Assert.Equal("?codec=cachegen%3A2", handler.Last.Uri.Query);

            await client.PinChunkAsync(Payloads.ChunkId, TimeSpan.FromSeconds(1.2), tenant: "t1");
            Assert.Equal("/v1/chunks/" + Payloads.ChunkId + "/pin", handler.Last.Uri.AbsolutePath);
            Assert.Equal("?tenant=t1", handler.Last.Uri.Query);
            Assert.Equal("{\"ttl_seconds\":2}", handler.Last.BodyText);

            Assert.Throws<ArgumentException>(() => { _ = client.GetChunkAsync(Payloads.ChunkId, tenant: " "); });
            await Assert.ThrowsAsync<ArgumentException>(() => client.GetChunkKvAsync(Payloads.ChunkId, codec: ""));
        }
    }

    [Fact]
    public async Task An_agent_is_named_in_the_body_of_a_create_and_the_query_of_a_get()
    {
        var (client, handler) = CannedHandler.Client(request => request.Method == HttpMethod.Post
            ? CannedHandler.Json(HttpStatusCode.OK, $"{{\"chunks\":[{Payloads.Chunk()}]}}")
            : CannedHandler.Json(HttpStatusCode.OK, Payloads.Chunk()));
        using (client)
        {
            await client.CreateChunkAsync("Context the docs agent read.", "tiny-pydocs");
            Assert.Equal("{\"chunks\":[{\"text\":\"Context the docs agent read.\"}],\"model\":\"tiny-pydocs\"}", handler.Last.BodyText);

            await client.GetChunkAsync(Payloads.ChunkId, null, "tiny pydocs");
            Assert.Equal("?model=tiny%20pydocs", handler.Last.Uri.Query);
            await client.GetChunkAsync(Payloads.ChunkId, "t1", "tiny-pydocs");
            Assert.Equal("?tenant=t1&model=tiny-pydocs", handler.Last.Uri.Query);
            Assert.Throws<ArgumentException>(() => { _ = client.GetChunkAsync(Payloads.ChunkId, null, ""); });
        }
    }

    [Fact]
    public async Task Sharing_fields_travel_in_the_kvfusion_object()
    {
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, Payloads.ChatCompletion()));
        using (client)
        {
            var completion = await client.ChatCompletionAsync(new ChatCompletionRequest
            {
                Model = "tiny-pydocs-coder",
                Messages = [new ChatMessage { Role = "user", Content = "Which function parses JSON?" }],
                Kvfusion = new FusionOptions { Chunks = [Payloads.ChunkId], SharedFrom = "tiny-pydocs", Recompute = "0-3", SaveConversation = true },
            });

            using var body = JsonDocument.Parse(handler.Last.BodyText!);
            var kv = body.RootElement.GetProperty("kvfusion");
            Assert.Equal("tiny-pydocs", kv.GetProperty("shared_from").GetString());
            Assert.Equal("0-3", kv.GetProperty("recompute").GetString());
            Assert.True(kv.GetProperty("save_conversation").GetBoolean());
            Assert.Equal("tiny-pydocs-coder", body.RootElement.GetProperty("model").GetString());
            Assert.Equal(Payloads.ChunkId, completion.Kvfusion.ConversationId);
            Assert.Equal("share:0-3", completion.Kvfusion.Mode);
        }
    }

    [Fact]
    public async Task The_quality_floor_travels_and_the_gates_report_comes_back()
    {
        const string answer = "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"tiny-pydocs\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":2}},"
            + "\"kvfusion\":{\"mode\":\"blend:0.15\",\"reused_tokens\":2,\"recomputed_tokens\":1,\"ttft_ms\":1.5,"
            + "\"quality\":{\"estimated_kl\":0.19,\"requested_estimated_kl\":0.56,\"floor\":0.2,\"decision\":\"ratio_raised\",\"ratio\":0.6,\"requested_ratio\":0.15,\"cost_ms\":42.5}}}";
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, answer));
        using (client)
        {
            var completion = await client.ChatCompletionAsync(new ChatCompletionRequest
            {
                Messages = [new ChatMessage { Role = "user", Content = "Which function parses JSON?" }],
                Kvfusion = new FusionOptions { Chunks = [Payloads.ChunkId], QualityFloor = 0.2 },
            });

            using var body = JsonDocument.Parse(handler.Last.BodyText!);
            Assert.Equal(0.2, body.RootElement.GetProperty("kvfusion").GetProperty("quality_floor").GetDouble());
            var quality = completion.Kvfusion.Quality!;
            Assert.Equal("ratio_raised", quality.Decision);
            Assert.Equal(0.6, quality.Ratio);
            Assert.Equal(0.15, quality.RequestedRatio);
            Assert.Equal(0.2, quality.Floor);
            Assert.Equal(42.5, quality.CostMs);
        }
    }

    [Fact]
    public async Task A_pin_needs_a_positive_ttl()
    {
        var (client, _) = CannedHandler.Client(_ => throw new InvalidOperationException("nothing should be sent"));
        using (client)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = client.PinChunkAsync(Payloads.ChunkId, TimeSpan.Zero); });
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = client.PinChunkAsync(Payloads.ChunkId, TimeSpan.FromSeconds(-1)); });
            Assert.Throws<ArgumentOutOfRangeException>(() => { _ = client.PinChunkAsync(Payloads.ChunkId, TimeSpan.MaxValue); });
            await Task.CompletedTask;
        }
    }

    [Fact]
    public async Task The_api_key_is_sent_as_a_bearer_token_on_every_request()
    {
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, "{\"object\":\"list\",\"data\":[{\"id\":\"tiny-pydocs\",\"created\":1,\"fingerprint\":\"ab\",\"context_length\":512}]}"), apiKey: "kvf_test_123");
        using (client)
        {
            var models = await client.ListModelsAsync();

            Assert.Equal("tiny-pydocs", Assert.Single(models.Data).Id);
            Assert.Equal(512, models.Data[0].ContextLength);
            Assert.Equal("Bearer", handler.Last.Authorization?.Scheme);
            Assert.Equal("kvf_test_123", handler.Last.Authorization?.Parameter);
        }

        var (anonymous, anonymousHandler) = CannedHandler.Client(_ => new HttpResponseMessage(HttpStatusCode.OK));
        using (anonymous)
        {
            await anonymous.IsAliveAsync();
            Assert.Null(anonymousHandler.Last.Authorization);
        }
    }

    [Fact]
    public async Task Whole_completions_are_sent_with_stream_false_and_without_stream_options()
    {
        var chat = "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
            + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":2}},"
            + "\"kvfusion\":{\"mode\":\"blend:0.15\",\"reused_tokens\":2,\"recomputed_tokens\":1,\"ttft_ms\":1.5,\"stage_ms\":{\"load\":0.25}}}";
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, chat));
        using (client)
        {
            var request = new ChatCompletionRequest
            {
                Messages = [new ChatMessage { Role = "user", Content = "Hi" }],
                Stream = true,
                StreamOptions = new StreamOptions { IncludeUsage = true },
                Kvfusion = new FusionOptions { Chunks = [Payloads.ChunkId], Mode = "blend" },
            };
            var completion = await client.ChatCompletionAsync(request);

            Assert.Equal("hi", completion.Choices[0].Message.Content);
            Assert.Equal(2, completion.Usage.PromptTokensDetails.CachedTokens);
            Assert.Equal(0.25, completion.Kvfusion.StageMs["load"]);
            Assert.Contains("\"stream\":false", handler.Last.BodyText, StringComparison.Ordinal);
            Assert.DoesNotContain("stream_options", handler.Last.BodyText, StringComparison.Ordinal);
            Assert.Contains("\"kvfusion\":{\"chunks\":[\"" + Payloads.ChunkId + "\"],\"mode\":\"blend\"}", handler.Last.BodyText, StringComparison.Ordinal);
            Assert.StartsWith("application/json", handler.Last.ContentType, StringComparison.Ordinal);
            Assert.True(request.Stream); // the caller's request is left as it was
        }
    }

    [Fact]
    public async Task Kv_download_streams_into_the_destination_and_upload_sends_octets_leaving_the_stream_open()
    {
        var container = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        var (client, handler) = CannedHandler.Client(request => request.Method == HttpMethod.Get
            ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(new SegmentedStream(container.Chunk(10_000))) }
            : CannedHandler.Json(HttpStatusCode.Created, Payloads.Chunk()));
        using (client)
        {
            using var destination = new MemoryStream();
            var copied = await client.DownloadChunkKvAsync(Payloads.ChunkId, destination, codec: "lz4");
            Assert.Equal(container.Length, copied);
            Assert.Equal(container, destination.ToArray());
            Assert.Equal("?codec=lz4", handler.Last.Uri.Query);

            Assert.Equal(container, await client.GetChunkKvAsync(Payloads.ChunkId));
            Assert.Equal("", handler.Last.Uri.Query);

            using var source = new MemoryStream(container);
            source.Position = 100;
            var stored = await client.UploadChunkKvAsync(Payloads.ChunkId, source);
            Assert.Equal(HttpMethod.Put, handler.Last.Method);
            Assert.Equal("application/octet-stream", handler.Last.ContentType);
            Assert.Equal(container.AsSpan(100).ToArray(), handler.Last.Body);
            Assert.True(source.CanRead); // not disposed
            Assert.Equal(Payloads.ChunkId, stored.Id);

            await client.UploadChunkKvAsync(Payloads.ChunkId, container.AsMemory(0, 10));
            Assert.Equal(container.AsSpan(0, 10).ToArray(), handler.Last.Body);

            await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadChunkKvAsync(Payloads.ChunkId, new MemoryStream([], writable: false)));
        }
    }

    [Fact]
    public async Task CreateChunk_sends_one_text_chunk_and_returns_it()
    {
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, $"{{\"chunks\":[{Payloads.Chunk(created: false)}]}}"));
        using (client)
        {
            var chunk = await client.CreateChunkAsync("The json module encodes objects.");

            Assert.False(chunk.Created);
            Assert.Equal("{\"chunks\":[{\"text\":\"The json module encodes objects.\"}]}", handler.Last.BodyText);
            Assert.Equal(new Uri("http://kvfusion.test/v1/chunks"), handler.Last.Uri);
            await Assert.ThrowsAsync<ArgumentException>(() => client.CreateChunkAsync(""));
        }
    }
}
