using System.Net;
using System.Text;
using System.Text.Json;
using KvFusion.Client.Contracts;
using KvFusion.Client.Internal;
using KvFusion.Client.Tests.Support;

namespace KvFusion.Client.Tests;

/// <summary>Reading the service's server-sent events: OpenAI-style completion streams and document progress.</summary>
public sealed class ServerSentEventTests
{
    private static readonly ChatCompletionRequest Chat = new() { Messages = [new ChatMessage { Role = "user", Content = "Hi" }] };

    private static async Task<List<T>> CollectAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items)
        {
            list.Add(item);
        }

        return list;
    }

    [Fact]
    public async Task A_chat_stream_split_at_awkward_places_yields_every_chunk_and_stops_at_DONE()
    {
        var first = Payloads.ChatChunk("He", role: "assistant");
        var second = Payloads.ChatChunk("llo", finish: "stop");
        var body = $": keep-alive\r\n\r\ndata: {first}\r\n\r\ndata: {second}\n\ndata: [DONE]\n\ndata: {{not json after done\n\n";
        var pieces = new List<string>();
        for (var i = 0; i < body.Length; i += 7)
        {
            pieces.Add(body.Substring(i, Math.Min(7, body.Length - i))); // splits lines, "\r\n" pairs and "data:" prefixes
        }

        var (client, handler) = CannedHandler.Client(_ => CannedHandler.EventStream([.. pieces]));
        using (client)
        {
            var chunks = await CollectAsync(client.StreamChatCompletionAsync(Chat));

            Assert.Equal(2, chunks.Count);
            Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
            Assert.Equal("He", chunks[0].Choices[0].Delta.Content);
            Assert.Null(chunks[0].Choices[0].FinishReason);
            Assert.Equal("llo", chunks[1].Choices[0].Delta.Content);
            Assert.Equal("stop", chunks[1].Choices[0].FinishReason);
            Assert.Contains("\"stream\":true", handler.Last.BodyText, StringComparison.Ordinal);
            Assert.Contains("text/event-stream", handler.Last.Accept, StringComparison.Ordinal);
            Assert.Equal(new Uri("http://kvfusion.test/v1/chat/completions"), handler.Last.Uri);
        }
    }

    [Fact]
    public async Task Multi_line_data_is_joined_with_newlines_and_comments_and_unknown_events_are_skipped()
    {
        var body = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\n"
            + "data: \"created\":1,\"model\":\"m\",\n"
            + ": a comment between data lines\n"
            + "data: \"choices\":[{\"index\":0,\"text\":\"a\\nb\",\"finish_reason\":null}]}\n"
            + "\n"
            + "event: ping\ndata: {}\n\n"
            + "id: 7\nretry: 1000\ndata: " + Payloads.TextChunk("c", "length") + "\n\n"
            + "data: [DONE]\n\n";
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream(body));
        using (client)
        {
            var items = await CollectAsync(client.StreamCompletionAsync(new CompletionRequest { Prompt = "p" }));

            Assert.Equal(2, items.Count);
            Assert.Equal("a\nb", items[0].Choices[0].Text);
            Assert.Equal("c", items[1].Choices[0].Text);
            Assert.Equal("length", items[1].Choices[0].FinishReason);
        }
    }

    [Fact]
    public async Task A_character_split_across_reads_is_decoded_whole()
    {
        var bytes = Encoding.UTF8.GetBytes($"data: {Payloads.ChatChunk("é→😀")}\n\ndata: [DONE]\n\n");
        var pieces = bytes.Select(b => new[] { b }); // one byte per read
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStreamBytes(pieces));
        using (client)
        {
            var chunks = await CollectAsync(client.StreamChatCompletionAsync(Chat));

            Assert.Equal("é→😀", Assert.Single(chunks).Choices[0].Delta.Content);
        }
    }

    [Fact]
    public async Task An_error_event_mid_stream_throws_the_problem_after_the_chunks_before_it()
    {
        var body = $"data: {Payloads.ChatChunk("He")}\n\n"
            + "event: error\ndata: {\"type\":\"https://kvfusion.dev/problems/engine-failed\",\"title\":\"Generation failed\",\"status\":500,\"detail\":\"The engine ran out of KV blocks.\"}\n\n"
            + "data: [DONE]\n\n";
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream(body));
        using (client)
        {
            var seen = new List<ChatCompletionChunk>();
            var e = await Assert.ThrowsAsync<KvFusionApiException>(async () =>
            {
                await foreach (var chunk in client.StreamChatCompletionAsync(Chat))
                {
                    seen.Add(chunk);
                }
            });

            Assert.Single(seen);
            Assert.Equal(HttpStatusCode.InternalServerError, e.StatusCode);
            Assert.Equal("Generation failed", e.Title);
            Assert.Equal("The engine ran out of KV blocks.", e.Detail);
            Assert.Equal("https://kvfusion.dev/problems/engine-failed", e.ProblemType);
            Assert.Equal("500 Generation failed: The engine ran out of KV blocks.", e.Message);
        }
    }

    [Fact]
    public async Task An_error_event_that_is_not_json_still_throws_with_its_text()
    {
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream("event: error\ndata: boom\n\n"));
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => CollectAsync(client.StreamChatCompletionAsync(Chat)));

            Assert.Equal(HttpStatusCode.InternalServerError, e.StatusCode);
            Assert.Equal("boom", e.Detail);
        }
    }

    [Fact]
    public async Task A_stream_that_ends_before_DONE_is_an_IOException()
    {
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream($"data: {Payloads.ChatChunk("He")}\n\n"));
        using (client)
        {
            var e = await Assert.ThrowsAsync<IOException>(() => CollectAsync(client.StreamChatCompletionAsync(Chat)));

            Assert.Contains("[DONE]", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_error_status_on_a_streamed_request_throws_before_any_chunk()
    {
        var (client, _) = CannedHandler.Client(_ => CannedHandler.Problem(HttpStatusCode.TooManyRequests, "{\"title\":\"Too Many Requests\",\"status\":429,\"detail\":\"The queue is full.\"}", TimeSpan.FromSeconds(3)));
        using (client)
        {
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => CollectAsync(client.StreamChatCompletionAsync(Chat)));

            Assert.Equal(HttpStatusCode.TooManyRequests, e.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(3), e.RetryAfter);
        }
    }

    [Fact]
    public async Task A_streamed_request_answered_with_json_is_refused_naming_the_content_type()
    {
        var (client, _) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.OK, Payloads.TextChunk("x", "stop")));
        using (client)
        {
            var e = await Assert.ThrowsAsync<InvalidDataException>(() => CollectAsync(client.StreamCompletionAsync(new CompletionRequest { Prompt = "p" })));

            Assert.Contains("application/json", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_enumerator_token_cancels_a_stream()
    {
        var body = string.Concat(Enumerable.Range(0, 50).Select(i => $"data: {Payloads.ChatChunk("t" + i)}\n\n")) + "data: [DONE]\n\n";
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream(body));
        using (client)
        using (var cts = new CancellationTokenSource())
        {
            var seen = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (var chunk in client.StreamChatCompletionAsync(Chat).WithCancellation(cts.Token))
                {
                    if (++seen == 3)
                    {
                        await cts.CancelAsync();
                    }
                }
            });

            Assert.Equal(3, seen);
        }
    }

    [Fact]
    public void A_stream_call_checks_its_request_before_enumeration()
    {
        var (client, _) = CannedHandler.Client(_ => throw new InvalidOperationException("no request expected"));
        using (client)
        {
            Assert.Throws<ArgumentNullException>(() => client.StreamChatCompletionAsync(null!));
            Assert.Throws<ArgumentNullException>(() => client.StreamCompletionAsync(null!));
        }
    }

    [Theory]
    [InlineData("[DONE]")]
    [InlineData(" [DONE] ")]
    [InlineData("[DONE]\r")]
    public void DONE_is_recognised_with_stray_whitespace(string data)
    {
        var e = ServerSentEventReader.ParseOpenAIStyle("message", Encoding.UTF8.GetBytes(data), KvFusionJsonContext.Default.Completion);

        Assert.Equal(StreamEventKind.Done, e.Kind);
    }

    [Fact]
    public void Empty_data_and_other_event_types_are_ignored_and_bad_json_throws()
    {
        Assert.Equal(StreamEventKind.Ignored, ServerSentEventReader.ParseOpenAIStyle("message", ""u8, KvFusionJsonContext.Default.Completion).Kind);
        Assert.Equal(StreamEventKind.Ignored, ServerSentEventReader.ParseOpenAIStyle("ping", "{}"u8, KvFusionJsonContext.Default.Completion).Kind);
        Assert.ThrowsAny<JsonException>(() => ServerSentEventReader.ParseOpenAIStyle("message", "{\"id\":"u8, KvFusionJsonContext.Default.Completion));
    }

    [Fact]
    public async Task A_streamed_document_reports_each_progress_event_then_returns_the_document()
    {
        var body = $"event: progress\ndata: {Payloads.Progress(1, 3, 1)}\n\n"
            + ": heartbeat\n\n"
            + $"event: progress\ndata: {Payloads.Progress(2, 3, 1)}\n\n"
            + $"event: progress\r\ndata: {Payloads.Progress(3, 3, 2)}\r\n\r\n"
            + $"event: document\ndata: {Payloads.Document()}\n\n";
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.EventStream(body));
        using (client)
        {
            var progress = new ListProgress<DocumentProgress>();
            var document = await client.CreateDocumentAsync(new CreateDocumentRequest { Text = "some text" }, progress);

            Assert.Equal([1, 2, 3], progress.Items.Select(p => p.Done));
            Assert.Equal([1, 1, 2], progress.Items.Select(p => p.Computed));
            Assert.All(progress.Items, p => Assert.Equal(3, p.Total));
            Assert.Equal(Payloads.ChunkId, document.Id);
            Assert.Single(document.Chunks);
            Assert.Contains("\"stream\":true", handler.Last.BodyText, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_document_without_progress_is_not_streamed()
    {
        var (client, handler) = CannedHandler.Client(_ => CannedHandler.Json(HttpStatusCode.Created, Payloads.Document()));
        using (client)
        {
            var document = await client.CreateDocumentAsync(new CreateDocumentRequest { Text = "t", Stream = true });

            Assert.Equal(Payloads.ChunkId, document.Id);
            Assert.DoesNotContain("\"stream\":true", handler.Last.BodyText, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_document_stream_error_event_throws_and_a_stream_without_the_document_is_an_IOException()
    {
        var failing = $"event: progress\ndata: {Payloads.Progress(1, 2, 1)}\n\nevent: error\ndata: {{\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"The rocksdb tier is down.\"}}\n\n";
        var (client, _) = CannedHandler.Client(_ => CannedHandler.EventStream(failing));
        using (client)
        {
            var progress = new ListProgress<DocumentProgress>();
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.CreateDocumentAsync(new CreateDocumentRequest { Text = "t" }, progress));

            Assert.Single(progress.Items);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, e.StatusCode);
            Assert.Equal("503 Service Unavailable: The rocksdb tier is down.", e.Message);
        }

        var (truncated, _) = CannedHandler.Client(_ => CannedHandler.EventStream($"event: progress\ndata: {Payloads.Progress(1, 2, 1)}\n\n"));
        using (truncated)
        {
            await Assert.ThrowsAsync<IOException>(() => truncated.CreateDocumentAsync(new CreateDocumentRequest { Text = "t" }, new ListProgress<DocumentProgress>()));
        }
    }

    private sealed class ListProgress<T> : IProgress<T>
    {
        public List<T> Items { get; } = [];

        public void Report(T value) => Items.Add(value);
    }
}
