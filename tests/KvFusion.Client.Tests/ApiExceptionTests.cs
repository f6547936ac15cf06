using System.Net;
using System.Net.Http.Headers;
using System.Text;
using KvFusion.Client.Contracts;
using KvFusion.Client.Tests.Support;

namespace KvFusion.Client.Tests;

/// <summary>Error responses (RFC 9457 problem details or not) as <see cref="KvFusionApiException"/>.</summary>
public sealed class ApiExceptionTests
{
    [Fact]
    public async Task A_problem_becomes_an_exception_with_its_members_and_a_readable_message()
    {
        var problem = "{\"type\":\"https://tools.ietf.org/html/rfc9110#section-15.5.5\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"Chunk 0123 is not stored.\",\"traceId\":\"00-abc\"}";
        var (client, _) = CannedHandler.Client(_ => CannedHandler.Problem(HttpStatusCode.NotFound, problem));
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetChunkAsync(Payloads.ChunkId));

            Assert.Equal(HttpStatusCode.NotFound, e.StatusCode);
            Assert.Equal("Not Found", e.Title);
            Assert.Equal("Chunk 0123 is not stored.", e.Detail);
            Assert.Equal("https://tools.ietf.org/html/rfc9110#section-15.5.5", e.ProblemType);
            Assert.Null(e.RetryAfter);
            Assert.Equal("404 Not Found: Chunk 0123 is not stored.", e.Message);
        }
    }

    [Fact]
    public async Task Retry_After_in_seconds_is_kept_on_429_and_503()
    {
        foreach (var status in new[] { HttpStatusCode.TooManyRequests, HttpStatusCode.ServiceUnavailable })
        {
            var (client, _) = CannedHandler.Client(_ => CannedHandler.Problem(status, $"{{\"title\":\"Busy\",\"status\":{(int)status}}}", TimeSpan.FromSeconds(7)));
            using (client)
            {
                var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.ListModelsAsync());

                Assert.Equal(status, e.StatusCode);
                Assert.Equal(TimeSpan.FromSeconds(7), e.RetryAfter);
                Assert.Equal($"{(int)status} Busy", e.Message);
            }
        }
    }

    [Fact]
    public async Task Retry_After_as_a_date_is_the_time_left_until_it()
    {
        var (client, _) = CannedHandler.Client(_ =>
        {
            var response = CannedHandler.Problem(HttpStatusCode.ServiceUnavailable, "{\"status\":503}");
            response.Headers.RetryAfter = new RetryConditionHeaderValue(DateTimeOffset.UtcNow.AddSeconds(60));
            return response;
        });
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.ListModelsAsync());

            Assert.NotNull(e.RetryAfter);
            Assert.InRange(e.RetryAfter.Value, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(61));
            Assert.Equal("503 Service Unavailable", e.Message);
        }
    }

    [Fact]
    public async Task A_body_that_is_not_a_problem_is_quoted_in_the_message_up_to_200_characters()
    {
        var html = "<html><body>" + new string('x', 500) + "</body></html>";
        var (client, _) = CannedHandler.Client(_ => new HttpResponseMessage(HttpStatusCode.BadGateway) { Content = new StringContent(html, Encoding.UTF8, "text/html") });
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.ListModelsAsync());

            Assert.Equal(HttpStatusCode.BadGateway, e.StatusCode);
            Assert.Null(e.Title);
            Assert.Null(e.Detail);
            Assert.StartsWith("502 Bad Gateway: <html><body>xxx", e.Message, StringComparison.Ordinal);
            Assert.Equal("502 Bad Gateway: ".Length + KvFusionApiException.BodyExcerptLength + 1, e.Message.Length);
            Assert.EndsWith("…", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_problem_content_type_that_is_not_json_and_an_empty_body_still_give_a_message()
    {
        var (broken, _) = CannedHandler.Client(_ => CannedHandler.Problem(HttpStatusCode.BadRequest, "{not json"));
        using (broken)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => broken.ListModelsAsync());
            Assert.Equal("400 Bad Request: {not json", e.Message);
        }

        var (empty, _) = CannedHandler.Client(_ => new HttpResponseMessage(HttpStatusCode.InternalServerError));
        using (empty)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => empty.ListModelsAsync());
            Assert.Equal("500 Internal Server Error", e.Message);
        }
    }

    [Fact]
    public async Task A_problem_sent_as_plain_json_is_still_read_as_a_problem()
    {
        var (client, _) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.UnprocessableEntity, "{\"title\":\"Invalid request\",\"status\":422,\"detail\":\"max_tokens must be positive.\"}"));
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.CompletionAsync(new CompletionRequest { Prompt = "p", MaxTokens = -1 }));

            Assert.Equal("422 Invalid request: max_tokens must be positive.", e.Message);
            Assert.Equal("max_tokens must be positive.", e.Detail);
        }
    }

    [Fact]
    public void The_public_constructor_builds_the_same_message()
    {
        var e = new KvFusionApiException(HttpStatusCode.Conflict, "Conflict", "The container's id is not the chunk id.", "about:blank", TimeSpan.FromSeconds(1));

        Assert.Equal("409 Conflict: The container's id is not the chunk id.", e.Message);
        Assert.Equal("about:blank", e.ProblemType);
        Assert.Equal(TimeSpan.FromSeconds(1), e.RetryAfter);
        Assert.Equal("429 Too Many Requests", new KvFusionApiException(HttpStatusCode.TooManyRequests, null, null).Message);
    }

    [Fact]
    public async Task Delete_and_unpin_answer_false_on_404_and_throw_on_other_errors()
    {
        var status = HttpStatusCode.NoContent;
        var (client, handler) = CannedHandler.Client(_ => status == HttpStatusCode.NoContent
            ? new HttpResponseMessage(status)
            : CannedHandler.Problem(status, $"{{\"status\":{(int)status},\"title\":\"x\"}}"));
        using (client)
        {
            Assert.True(await client.DeleteChunkAsync(Payloads.ChunkId));
            Assert.Equal(HttpMethod.Delete, handler.Last.Method);
            Assert.True(await client.UnpinChunkAsync(Payloads.ChunkId));
            Assert.EndsWith("/pin", handler.Last.Uri.AbsolutePath, StringComparison.Ordinal);

            status = HttpStatusCode.NotFound;
            Assert.False(await client.DeleteChunkAsync(Payloads.ChunkId));
            Assert.False(await client.UnpinChunkAsync(Payloads.ChunkId));

            status = HttpStatusCode.Forbidden;
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.DeleteChunkAsync(Payloads.ChunkId, tenant: "other"));
            Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        }
    }

    [Fact]
    public async Task Readiness_is_a_report_on_200_and_503_and_an_exception_otherwise()
    {
        var response = () => CannedHandler.Json(HttpStatusCode.OK, Payloads.ReadyReport);
        var (client, _) = CannedHandler.Client(_ => response());
        using (client)
        {
            var ready = await client.GetReadinessAsync();
            Assert.Equal("ready", ready.Status);
            Assert.Equal("tiny-pydocs", ready.Model);
            Assert.True(Assert.Single(ready.Tiers).Up);

            response = () => CannedHandler.Json(HttpStatusCode.ServiceUnavailable, Payloads.NotReadyReport);
            var notReady = await client.GetReadinessAsync();
            Assert.Equal("not ready", notReady.Status);
            Assert.Equal(3, Assert.Single(notReady.Tiers).PendingWrites);

            response = () => CannedHandler.Problem(HttpStatusCode.ServiceUnavailable, "{\"status\":503,\"title\":\"Draining\"}", TimeSpan.FromSeconds(2));
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetReadinessAsync());
            Assert.Equal(TimeSpan.FromSeconds(2), e.RetryAfter);

            response = () => CannedHandler.Problem(HttpStatusCode.Unauthorized, "{\"status\":401,\"title\":\"Unauthorized\"}");
            await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetReadinessAsync());
        }
    }

    [Fact]
    public async Task IsAlive_is_false_for_an_error_status_or_an_unreachable_service()
    {
        var mode = 0;
        var (client, handler) = CannedHandler.Client(_ => mode switch
        {
            0 => new HttpResponseMessage(HttpStatusCode.OK),
            1 => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable),
            _ => throw new HttpRequestException("Connection refused"),
        });
        using (client)
        {
            Assert.True(await client.IsAliveAsync());
            Assert.Equal(new Uri("http://kvfusion.test/healthz"), handler.Last.Uri);
            mode = 1;
            Assert.False(await client.IsAliveAsync());
            mode = 2;
            Assert.False(await client.IsAliveAsync());
        }
    }
}
