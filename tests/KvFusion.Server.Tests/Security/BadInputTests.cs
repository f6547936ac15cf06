using System.Net;
using System.Text;

namespace KvFusion.Server.Tests.Security;

/// <summary>Malformed requests are 4xx ProblemDetails that reveal nothing of the service's files or code.</summary>
public sealed class BadInputTests(BadInputTests.Server server) : IClassFixture<BadInputTests.Server>
{
    private const string User = """[{"role": "user", "content": "Hi"}]""";

    public sealed class Server() : ServerFixture(new Dictionary<string, string?> { ["KvFusion:Limits:MaxRequestBodyBytes"] = "4096" });

    [SkippableTheory]
    [InlineData("malformed JSON", """{"messages": [""")]
    [InlineData("a JSON array", """[1, 2]""")]
    [InlineData("JSON null", "null")]
    [InlineData("max_tokens of the wrong type", """{"messages": MSG, "max_tokens": "ten"}""")]
    [InlineData("an unknown field inside kvfusion", """{"messages": MSG, "kvfusion": {"chunkz": []}}""")]
    [InlineData("negative max_tokens", """{"messages": MSG, "max_tokens": -1}""")]
    [InlineData("zero max_tokens", """{"messages": MSG, "max_tokens": 0}""")]
    [InlineData("huge max_tokens", """{"messages": MSG, "max_tokens": 100000000}""")]
    [InlineData("max_tokens past int", """{"messages": MSG, "max_tokens": 99999999999999}""")]
    [InlineData("disagreeing max_tokens and max_completion_tokens", """{"messages": MSG, "max_tokens": 2, "max_completion_tokens": 3}""")]
    [InlineData("no messages", """{"messages": []}""")]
    [InlineData("a missing messages field", """{"max_tokens": 2}""")]
    [InlineData("messages with no user content", """{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ""}]}""")]
    [InlineData("a null message", """{"messages": [null]}""")]
    [InlineData("an unknown role", """{"messages": [{"role": "wizard", "content": "Hi"}]}""")]
    [InlineData("an image content part", """{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}""")]
    [InlineData("n = 2", """{"messages": MSG, "n": 2}""")]
    [InlineData("a bad mode", """{"messages": MSG, "kvfusion": {"mode": "magic"}}""")]
    [InlineData("recompute_ratio 0", """{"messages": MSG, "kvfusion": {"mode": "blend", "recompute_ratio": 0}}""")]
    [InlineData("recompute_ratio 2", """{"messages": MSG, "kvfusion": {"recompute_ratio": 2}}""")]
    [InlineData("recompute_ratio with mode full", """{"messages": MSG, "kvfusion": {"mode": "full", "recompute_ratio": 0.5}}""")]
    [InlineData("a negative quality_floor", """{"messages": MSG, "kvfusion": {"mode": "blend", "quality_floor": -0.1}}""")]
    [InlineData("a quality_floor with mode reuse", """{"messages": MSG, "kvfusion": {"mode": "reuse", "quality_floor": 0.2}}""")]
    [InlineData("a quality_floor that is a string", """{"messages": MSG, "kvfusion": {"quality_floor": "low"}}""")]
    [InlineData("a zero ttft_deadline_ms", """{"messages": MSG, "kvfusion": {"ttft_deadline_ms": 0}}""")]
    [InlineData("a negative max_mean_kl", """{"messages": MSG, "kvfusion": {"max_mean_kl": -1}}""")]
    [InlineData("a negative ttft_slack", """{"messages": MSG, "kvfusion": {"max_mean_kl": 0, "ttft_slack": -0.5}}""")]
    [InlineData("a non-hex chunk id", """{"messages": MSG, "kvfusion": {"chunks": ["zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"]}}""")]
    [InlineData("a short chunk id", """{"messages": MSG, "kvfusion": {"chunks": ["abcdef"]}}""")]
    [InlineData("a path as chunk id", """{"messages": MSG, "kvfusion": {"chunks": ["../../../../etc/passwd"]}}""")]
    [InlineData("temperature 5", """{"messages": MSG, "temperature": 5}""")]
    [InlineData("top_p 0", """{"messages": MSG, "top_p": 0}""")]
    [InlineData("five stop strings", """{"messages": MSG, "stop": ["a", "b", "c", "d", "e"]}""")]
    [InlineData("an empty stop string", """{"messages": MSG, "stop": [""]}""")]
    [InlineData("stream_options without stream", """{"messages": MSG, "stream_options": {"include_usage": true}}""")]
    public async Task A_bad_chat_request_is_400(string what, string body)
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json(body.Replace("MSG", User, StringComparison.Ordinal)));
        var problem = await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.False(string.IsNullOrEmpty(what + problem.GetProperty("detail").GetString()));
    }

    [SkippableTheory]
    [InlineData("""{"prompt": ""}""")]
    [InlineData("""{"prompt": ["a", "b"]}""")]
    [InlineData("""{"prompt": 7}""")]
    [InlineData("""{"max_tokens": 2}""")]
    public async Task A_bad_text_completion_request_is_400(string body)
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/completions"), Api.Json(body));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableTheory]
    [InlineData("""{"chunks": []}""")]
    [InlineData("""{"chunks": [{}]}""")]
    [InlineData("""{"chunks": [{"text": "a", "tokens": [1]}]}""")]
    [InlineData("""{"chunks": [{"text": ""}]}""")]
    [InlineData("""{"chunks": [{"tokens": []}]}""")]
    [InlineData("""{"chunks": [{"tokens": [1, 99999999]}]}""")]
    [InlineData("""{"chunks": [{"tokens": [-5]}]}""")]
    [InlineData("""{"chunks": [{"text": "a"}], "pin_seconds": 0}""")]
    [InlineData("""{"chunks": "text"}""")]
    public async Task A_bad_chunk_request_is_400(string body)
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/chunks"), Api.Json(body));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableTheory]
    [InlineData("""{"text": "Some text.", "chunk_tokens": 0}""")]
    [InlineData("""{"text": "Some text.", "chunk_tokens": 32, "overlap_tokens": 40}""")]
    [InlineData("""{"text": "Some text.", "overlap_tokens": -1}""")]
    public async Task A_bad_document_request_is_400(string body)
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/documents"), Api.Json(body));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableTheory]
    [InlineData("/v1/chunks/xyz")]
    [InlineData("/v1/chunks/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde")]
    [InlineData("/v1/chunks/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0")]
    [InlineData("/v1/chunks/zzzz456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/kv")]
    [InlineData("/v1/documents/not-a-document")]
    public async Task A_bad_id_in_the_path_is_400(string path)
    {
        using var client = server.Client();
        using var response = await client.GetAsync(path);
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableTheory]
    [InlineData("/v1/chunks/..%2F..%2Fetc")]
    [InlineData("/v1/chunks/..%2F..%2Fetc%2Fpasswd/kv")]
    [InlineData("/v1/chunks/%2e%2e")]
    [InlineData("/v1/chunks/%2e%2e/%2e%2e/etc/passwd")]
    [InlineData("/v1/chunks/..%5C..%5Cwindows")]
    [InlineData("/v1/documents/..%2F..%2Fetc%2Fpasswd")]
    [InlineData("/v1/documents/%2e%2e")]
    public async Task A_path_trick_is_400_or_404_and_never_a_file(string path)
    {
        using var client = server.Client();
        using var response = await client.GetAsync(path);
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{(int)response.StatusCode} for {path}");
        await Api.AssertProblemAsync(response, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("root:", text, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_unknown_model_is_404()
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json($$"""{"model": "gpt-9", "messages": {{User}}, "max_tokens": 2}"""));
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task A_fusion_of_an_unknown_chunk_is_404()
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json($$"""{"messages": {{User}}, "max_tokens": 2, "kvfusion": {"chunks": ["{{new string('d', 64)}}"] } }"""));
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task A_json_body_over_the_limit_is_413()
    {
        using var client = server.Client();
        var big = new string('x', 8000);
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json($$"""{"messages": [{"role": "user", "content": "{{big}}"}]}"""));
        await Api.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [SkippableFact]
    public async Task A_json_body_over_the_limit_without_a_declared_length_is_413()
    {
        using var client = server.Client();
        var big = Encoding.UTF8.GetBytes($$"""{"chunks": [{"text": "{{new string('x', 8000)}}"}]}""");
        using var content = new StreamContent(new UnknownLengthStream(big));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync(Api.Url("/v1/chunks"), content);
        await Api.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
    }

    [SkippableTheory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/chunks")]
    [InlineData("/v1/documents")]
    public async Task A_body_of_another_media_type_is_415(string path)
    {
        using var client = server.Client();
        using var content = new StringContent("""{"messages": []}""", Encoding.UTF8, "text/plain");
        using var response = await client.PostAsync(Api.Url(path), content);
        await Api.AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
    }

    [SkippableFact]
    public async Task An_empty_body_is_400()
    {
        using var client = server.Client();
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json(""));
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_method_not_allowed_is_405_problem_details()
    {
        using var client = server.Client();
        using var response = await client.PutAsync(Api.Url("/v1/chat/completions"), Api.Json("{}"));
        await Api.AssertProblemAsync(response, HttpStatusCode.MethodNotAllowed);
    }

    /// <summary>A stream that hides its length, so the body is sent chunked and only the read limit can stop it.</summary>
    private sealed class UnknownLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
