using System.Net;

namespace KvFusion.Server.Tests.Endpoints;

/// <summary>Requests past the model's context or the service's limits are refused as the caller's fault, never 500.</summary>
public sealed class LimitEndpointTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string LongText(int words) => string.Join(' ', Enumerable.Range(0, words).Select(i => $"word{i}"));

    [SkippableFact]
    public async Task A_chat_prompt_longer_than_the_context_is_400()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/chat/completions", Api.Chat(LongText(3000), maxTokens: 2));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_streamed_chat_prompt_longer_than_the_context_is_400_before_the_stream_starts()
    {
        using var client = server.Client();
        var body = Api.Chat(LongText(3000), maxTokens: 2);
        body["stream"] = true;
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_chunk_longer_than_the_context_is_400()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/chunks", new { chunks = new[] { new { tokens = Enumerable.Repeat(5, 3000).ToArray() } } });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task Fused_chunks_longer_than_the_context_together_are_400()
    {
        using var client = server.Client();
        using var created = await client.PostAsync("/v1/chunks", new
        {
            chunks = Enumerable.Range(0, 2).Select(i => new { tokens = Enumerable.Repeat(10 + i, 1040).ToArray() }).ToArray(),
        });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var ids = (await created.ReadJsonAsync()).GetProperty("chunks").EnumerateArray().Select(c => c.GetProperty("id").GetString()).ToArray();
        using var response = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2, kvfusion: new { chunks = ids }));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_streamed_document_with_a_chunk_past_the_context_ends_with_an_error_event()
    {
        using var client = server.Client();
        using var response = await client.SendStreamingAsync("/v1/documents", new { text = LongText(3000), chunk_tokens = 100_000, stream = true });
        if (response.StatusCode != HttpStatusCode.OK)
        {
            // Refusing before the stream starts is as good.
            await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
            return;
        }

        var events = await Api.ReadEventsAsync(response);
        Assert.Equal("error", events[^1].Event);
        var problem = System.Text.Json.JsonDocument.Parse(events[^1].Data).RootElement;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.DoesNotContain("/work", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_document_with_a_chunk_past_the_context_is_400()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/documents", new { text = LongText(3000), chunk_tokens = 100_000 });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task More_chunks_than_one_request_may_create_are_400()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/chunks", new { chunks = Enumerable.Range(1, 257).Select(i => new { tokens = new[] { i } }).ToArray() });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task More_chunks_than_one_request_may_fuse_are_400()
    {
        using var client = server.Client();
        var ids = Enumerable.Range(0, 257).Select(i => i.ToString("x64", System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        using var response = await client.PostAsync("/v1/chat/completions", Api.Chat("Hi?", maxTokens: 2, kvfusion: new { chunks = ids }));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task More_messages_than_allowed_are_400()
    {
        using var client = server.Client();
        var messages = Enumerable.Range(0, 513).Select(_ => new { role = "user", content = "Hi" }).ToArray();
        using var response = await client.PostAsync("/v1/chat/completions", new { messages, max_tokens = 1 });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_streamed_chat_fusing_an_unknown_chunk_is_404_before_the_stream_starts()
    {
        using var client = server.Client();
        var body = Api.Chat("Hi?", maxTokens: 2, kvfusion: new { chunks = new[] { new string('e', 64) } });
        body["stream"] = true;
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableTheory]
    [InlineData("text/event-stream")]
    [InlineData("text/html")]
    public async Task An_error_is_problem_details_whatever_the_client_accepts(string accept)
    {
        using var client = server.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, Api.Url("/v1/chunks/xyz"));
        request.Headers.Accept.ParseAdd(accept);
        using var response = await client.SendAsync(request);
        var problem = await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        using var plain = await client.GetAsync("/v1/chunks/xyz");
        var expected = await Api.AssertProblemAsync(plain, HttpStatusCode.BadRequest);
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name), problem.EnumerateObject().Select(p => p.Name));
    }

    [SkippableFact]
    public async Task An_upload_of_another_media_type_is_415()
    {
        using var client = server.Client();
        using var response = await client.PutAsync(Api.Url($"/v1/chunks/{new string('a', 64)}/kv"), Api.Json("{}"));
        await Api.AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }
}
