using System.Net;
using System.Text.Json;

namespace KvFusion.Server.Tests.Endpoints;

public sealed class CompletionEndpointTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Question = "What does the function return?";

    [SkippableTheory]
    [InlineData("blend")]
    [InlineData("reuse")]
    public async Task A_fused_chat_reports_the_chunks_tokens_as_cached(string mode)
    {
        using var client = server.Client();
        var (ids, tokens) = await ChunksAsync(client);
        var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode }));

        Assert.Equal("chat.completion", answer.GetProperty("object").GetString());
        Assert.Equal("assistant", answer.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());
        var usage = answer.GetProperty("usage");
        Assert.Equal(tokens, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > tokens);
        var fusion = answer.GetProperty("kvfusion");
        // The mode names its parameters too (blend:0.15).
        Assert.StartsWith(mode, fusion.GetProperty("mode").GetString(), StringComparison.Ordinal);
        Assert.Equal(tokens, fusion.GetProperty("reused_tokens").GetInt32());
        Assert.True(fusion.GetProperty("recomputed_tokens").GetInt32() > 0);
        Assert.True(fusion.GetProperty("ttft_ms").GetDouble() > 0);
    }

    [SkippableFact]
    public async Task A_blend_chat_reports_its_quality_estimate_and_no_gate_without_a_floor()
    {
        using var client = server.Client();
        var (ids, _) = await ChunksAsync(client);
        var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode = "blend" }));

        var quality = answer.GetProperty("kvfusion").GetProperty("quality");
        Assert.Equal("unchecked", quality.GetProperty("decision").GetString());
        Assert.True(quality.GetProperty("estimated_kl").GetDouble() > 0);
        Assert.Equal(0.15, quality.GetProperty("ratio").GetDouble(), 6);
        Assert.Equal(JsonValueKind.Null, quality.TryGetProperty("floor", out var floor) ? floor.ValueKind : JsonValueKind.Null);
    }

    [SkippableTheory]
    [InlineData(0.0, "fell_back_to_full")]
    [InlineData(1000.0, "passed")]
    public async Task A_blend_chat_with_a_quality_floor_reports_the_gate_decision(double floor, string decision)
    {
        using var client = server.Client();
        var (ids, tokens) = await ChunksAsync(client);
        var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode = "blend", quality_floor = floor }));

        var fusion = answer.GetProperty("kvfusion");
        var quality = fusion.GetProperty("quality");
        Assert.Equal(decision, quality.GetProperty("decision").GetString());
        Assert.Equal(floor, quality.GetProperty("floor").GetDouble());
        Assert.True(quality.GetProperty("requested_estimated_kl").GetDouble() > 0);
        if (decision == "fell_back_to_full")
        {
            // Answered by its own full prefill: nothing reused, every prompt token computed, and the gate's cost shown.
            Assert.Equal(1, quality.GetProperty("ratio").GetDouble());
            Assert.Equal(0, fusion.GetProperty("reused_tokens").GetInt32());
            Assert.Equal(answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), fusion.GetProperty("recomputed_tokens").GetInt32());
            Assert.True(quality.GetProperty("cost_ms").GetDouble() > 0);
        }
        else
        {
            Assert.Equal(tokens, fusion.GetProperty("reused_tokens").GetInt32());
            Assert.Equal(0, quality.GetProperty("cost_ms").GetDouble());
        }
    }

    [SkippableFact]
    public async Task A_chat_with_a_loading_goal_reports_the_controllers_choice_per_chunk()
    {
        using var client = server.Client();
        var (ids, _) = await ChunksAsync(client);

        // The first fusions measure the costs the controller plans with; until then it says why it made no plan.
        JsonElement loading = default;
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode = "blend", max_mean_kl = 0.0, ttft_deadline_ms = 60000 }));
            loading = answer.GetProperty("kvfusion").GetProperty("loading");
            if (loading.GetProperty("choices").GetArrayLength() > 0)
            {
                break;
            }

            Assert.False(string.IsNullOrEmpty(loading.GetProperty("skipped").GetString()));
        }

        var choices = loading.GetProperty("choices").EnumerateArray().Select(c => c.GetString()).ToList();
        Assert.Equal(ids.Length, choices.Count);
        Assert.All(choices, c => Assert.True(c == "text" || c!.StartsWith("lz4@", StringComparison.Ordinal) || c.StartsWith("raw@", StringComparison.Ordinal), c));
        Assert.True(loading.GetProperty("meets_goal").GetBoolean());
        Assert.Equal(0, loading.GetProperty("predicted_mean_kl").GetDouble());
        Assert.True(loading.GetProperty("predicted_ttft_ms").GetDouble() > 0);
    }

    [SkippableFact]
    public async Task A_full_recompute_chat_reports_no_cached_tokens()
    {
        using var client = server.Client();
        var (ids, _) = await ChunksAsync(client);
        var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode = "full" }));
        Assert.Equal(0, answer.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        var fusion = answer.GetProperty("kvfusion");
        Assert.Equal("full", fusion.GetProperty("mode").GetString());
        Assert.Equal(0, fusion.GetProperty("reused_tokens").GetInt32());
        Assert.Equal(answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), fusion.GetProperty("recomputed_tokens").GetInt32());
        Assert.True(fusion.GetProperty("ttft_ms").GetDouble() > 0);
    }

    [SkippableFact]
    public async Task A_prefix_mode_chat_answers_and_names_its_mode()
    {
        using var client = server.Client();
        var (ids, _) = await ChunksAsync(client);
        var answer = await ChatAsync(client, Api.Chat(Question, kvfusion: new { chunks = ids, mode = "prefix" }));
        Assert.Equal("prefix", answer.GetProperty("kvfusion").GetProperty("mode").GetString());
        Assert.True(answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
    }

    [SkippableFact]
    public async Task A_streamed_chat_with_include_usage_sends_chunks_then_a_usage_chunk_then_done()
    {
        using var client = server.Client();
        var (ids, tokens) = await ChunksAsync(client);
        var body = Api.Chat(Question, kvfusion: new { chunks = ids });
        body["stream"] = true;
        body["stream_options"] = new { include_usage = true };
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await Api.ReadEventsAsync(response);

        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(tokens, usage.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.True(chunks.Count >= 3, $"{chunks.Count} chunks");
        Assert.All(chunks.SkipLast(1), c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        Assert.Contains(chunks.SkipLast(1), c => c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String);
    }

    [SkippableFact]
    public async Task A_streamed_chat_without_include_usage_sends_no_usage_chunk()
    {
        using var client = server.Client();
        var body = Api.Chat(Question);
        body["stream"] = true;
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        var events = await Api.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1].Data);
        var chunks = events.SkipLast(1).Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.NotEmpty(chunks);
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object));
    }

    [SkippableFact]
    public async Task Max_completion_tokens_bounds_the_completion()
    {
        using var client = server.Client();
        var body = Api.Chat(Question, maxTokens: 8);
        body.Remove("max_tokens");
        body["max_completion_tokens"] = 3;
        var answer = await ChatAsync(client, body);
        var generated = answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.InRange(generated, 1, 3);
    }

    [SkippableFact]
    public async Task A_stop_sequence_cuts_the_text_before_it()
    {
        using var client = server.Client();
        var full = Text(await ChatAsync(client, Api.Chat(Question, maxTokens: 8)));
        Assert.True(full.Trim().Length >= 4, $"greedy output too short to cut: '{full}'");
        // A stop string from the middle of the greedy answer: the same greedy answer must end right before it.
        var stop = full.Substring(full.Length / 2, 2);
        var expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];

        var body = Api.Chat(Question, maxTokens: 8);
        body["stop"] = new[] { stop };
        var cut = await ChatAsync(client, body);
        Assert.Equal(expected, Text(cut));
        Assert.Equal("stop", cut.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [SkippableFact]
    public async Task A_stop_sequence_cuts_a_streamed_text_the_same_way()
    {
        using var client = server.Client();
        var full = Text(await ChatAsync(client, Api.Chat(Question, maxTokens: 8)));
        Assert.True(full.Trim().Length >= 4, $"greedy output too short to cut: '{full}'");
        var stop = full.Substring(full.Length / 2, 2);
        var expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];

        var body = Api.Chat(Question, maxTokens: 8);
        body["stop"] = stop;
        body["stream"] = true;
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        var chunks = (await Api.ReadEventsAsync(response)).SkipLast(1).Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        var text = string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal(expected, text);
        Assert.Equal("stop", chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [SkippableFact]
    public async Task A_message_of_text_content_parts_is_answered_like_a_string()
    {
        using var client = server.Client();
        var plain = Text(await ChatAsync(client, Api.Chat(Question)));
        var parts = Text(await ChatAsync(client, new Dictionary<string, object?>
        {
            ["messages"] = new[] { new { role = "user", content = new[] { new { type = "text", text = Question } } } },
            ["max_tokens"] = 4,
            ["temperature"] = 0,
        }));
        Assert.Equal(plain, parts);
    }

    [SkippableFact]
    public async Task A_chat_without_kvfusion_uses_exact_prefix_reuse()
    {
        using var client = server.Client();
        var answer = await ChatAsync(client, Api.Chat(Question));
        Assert.StartsWith("prefix", answer.GetProperty("kvfusion").GetProperty("mode").GetString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_streamed_text_completion_with_include_usage_ends_with_a_usage_chunk()
    {
        using var client = server.Client();
        using var response = await client.SendStreamingAsync("/v1/completions", new { prompt = "def read_lines(path):", max_tokens = 3, temperature = 0, stream = true, stream_options = new { include_usage = true } });
        var events = await Api.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1].Data);
        var usage = JsonDocument.Parse(events[^2].Data).RootElement;
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.InRange(usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 3);
    }

    [SkippableFact]
    public async Task The_same_seed_at_temperature_1_gives_the_same_answer()
    {
        using var client = server.Client();
        var body = Api.Chat(Question, maxTokens: 8, temperature: 1);
        body["seed"] = 1234;
        var first = Text(await ChatAsync(client, body));
        var second = Text(await ChatAsync(client, body));
        Assert.Equal(first, second);
    }

    [SkippableFact]
    public async Task Greedy_full_recompute_answers_are_identical_across_calls()
    {
        using var client = server.Client();
        var (ids, _) = await ChunksAsync(client);
        var body = Api.Chat(Question, maxTokens: 8, kvfusion: new { chunks = ids, mode = "full" });
        var first = Text(await ChatAsync(client, body));
        var second = Text(await ChatAsync(client, body));
        Assert.Equal(first, second);
    }

    [SkippableFact]
    public async Task A_text_completion_answers_whole()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/completions", new { prompt = "def read_lines(path):", max_tokens = 4, temperature = 0 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await response.ReadJsonAsync();
        Assert.Equal("text_completion", answer.GetProperty("object").GetString());
        Assert.Equal("tiny-pydocs", answer.GetProperty("model").GetString());
        Assert.Equal(JsonValueKind.String, answer.GetProperty("choices")[0].GetProperty("text").ValueKind);
        Assert.InRange(answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 4);
    }

    [SkippableFact]
    public async Task A_streamed_text_completion_sends_text_events_then_done_with_the_same_text_as_whole()
    {
        using var client = server.Client();
        var whole = new { prompt = "def read_lines(path):", max_tokens = 4, temperature = 0 };
        using var wholeResponse = await client.PostAsync("/v1/completions", whole);
        var expected = (await wholeResponse.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("text").GetString();

        using var response = await client.SendStreamingAsync("/v1/completions", new { prompt = "def read_lines(path):", max_tokens = 4, temperature = 0, stream = true });
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await Api.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1].Data);
        var text = string.Concat(events.SkipLast(1)
            .Select(e => JsonDocument.Parse(e.Data).RootElement)
            .Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(expected, text);
    }

    private static string Text(JsonElement answer) =>
        answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private static async Task<JsonElement> ChatAsync(HttpClient client, object body)
    {
        using var response = await client.PostAsync("/v1/chat/completions", body);
        var answer = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, answer.ToString());
        return answer;
    }

    private static async Task<(string[] Ids, int Tokens)> ChunksAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/v1/chunks", new
        {
            chunks = new[]
            {
                new { text = "def read_lines(path): opens the file and returns its lines as a list." },
                new { text = "def count_words(text): splits the text on spaces and counts the words." },
            },
        });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunks = (await response.ReadJsonAsync()).GetProperty("chunks").EnumerateArray().ToList();
        return ([.. chunks.Select(c => c.GetProperty("id").GetString()!)], chunks.Sum(c => c.GetProperty("tokens").GetInt32()));
    }
}
