using System.Net;
using System.Text.Json;
using KvFusion.Server.Inference;
using KvFusion.TestSupport;

namespace KvFusion.Server.Tests.Endpoints;

/// <summary>
/// Two agents of one family served together (tiny-pydocs and its fine-tune tiny-pydocs-coder), with the pair's sharing
/// profile and two tenants.
/// </summary>
public sealed class AgentServer() : ServerFixture(new Dictionary<string, string?>
{
    ["KvFusion:Agents:0"] = SharedModels.Path("tiny-pydocs-coder"),
    ["KvFusion:Sharing:Profiles:0"] = RepositoryRoot.Combine("tests", "data", "sharing-profile-tiny.json"),
    ["KvFusion:Auth:Keys:0:Key"] = Alpha,
    ["KvFusion:Auth:Keys:0:Tenant"] = "alpha",
    ["KvFusion:Auth:Keys:1:Key"] = Beta,
    ["KvFusion:Auth:Keys:1:Tenant"] = "beta",
})
{
    public const string Docs = "tiny-pydocs";
    public const string Coder = "tiny-pydocs-coder";
    public const string Alpha = "alpha-key-0123456789abcdef";
    public const string Beta = "beta-key-0123456789abcdef0";
}

/// <summary>Requests route by model id, and one agent fuses the caches another stored only through <c>share</c>.</summary>
public sealed class AgentEndpointTests(AgentServer server) : IClassFixture<AgentServer>
{
    private const string Context =
        "The json module encodes Python objects as JSON text. json.dumps returns a string, json.dump writes to a file object, "
        + "and both take indent and sort_keys to format the output. json.loads parses a string back into dicts and lists.";

    [SkippableFact]
    public async Task Models_lists_every_agent_served()
    {
        using var client = server.Client(AgentServer.Alpha);
        using var response = await client.GetAsync("/v1/models");
        var ids = (await response.ReadJsonAsync()).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Equal([AgentServer.Docs, AgentServer.Coder], ids);
    }

    [SkippableFact]
    public async Task Chunks_are_stored_under_the_agent_that_computed_them()
    {
        using var client = server.Client(AgentServer.Alpha);
        var id = await CreateAsync(client, Api.UniqueText("coder-only"), AgentServer.Coder);
        using var own = await client.GetAsync($"/v1/chunks/{id}?model={AgentServer.Coder}");
        Assert.Equal(AgentServer.Coder, (await own.ReadJsonAsync()).GetProperty("model").GetString());
        using var other = await client.GetAsync($"/v1/chunks/{id}");
        await Api.AssertProblemAsync(other, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task Share_recomputing_every_layer_answers_as_the_receivers_own_prefill()
    {
        using var client = server.Client(AgentServer.Alpha);
        var senders = await CreateAsync(client, Context, AgentServer.Docs);
        var own = await CreateAsync(client, Context, AgentServer.Coder);
        Assert.NotEqual(senders, own);

        var full = await ChatAsync(client, AgentServer.Coder, new { chunks = new[] { own }, mode = "full" });
        var shared = await ChatAsync(client, AgentServer.Coder, new { chunks = new[] { senders }, shared_from = AgentServer.Docs, recompute = "0-5" });
        Assert.Equal(Text(full), Text(shared));
        Assert.Equal("share:0-5", Fusion(shared).GetProperty("mode").GetString());
    }

    [SkippableFact]
    public async Task Share_without_ranges_recomputes_the_pairs_profiled_ranges_and_reuses_the_rest()
    {
        using var client = server.Client(AgentServer.Alpha);
        var id = await CreateAsync(client, Context + " " + Api.UniqueText("profiled"), AgentServer.Docs);
        var shared = await ChatAsync(client, AgentServer.Coder, new { chunks = new[] { id }, shared_from = AgentServer.Docs });
        var fusion = Fusion(shared);
        Assert.Equal("share:0-3", fusion.GetProperty("mode").GetString());
        Assert.True(fusion.GetProperty("reused_tokens").GetInt32() > 0);
        Assert.True(shared.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32() > 0);
    }

    [SkippableFact]
    public async Task Blend_over_another_agents_caches_honours_both_recompute_sets()
    {
        using var client = server.Client(AgentServer.Alpha);
        var id = await CreateAsync(client, Context + " " + Api.UniqueText("blended"), AgentServer.Docs);
        var blended = await ChatAsync(client, AgentServer.Coder, new { chunks = new[] { id }, shared_from = AgentServer.Docs, mode = "blend", recompute_ratio = 0.3, recompute = "0-1" });
        var fusion = Fusion(blended);
        Assert.Equal("blend:0.3+share:0-1", fusion.GetProperty("mode").GetString());
        Assert.True(fusion.GetProperty("reused_tokens").GetInt32() > 0);
    }

    [SkippableFact]
    public async Task A_saved_conversation_is_handed_to_another_agent_by_its_id()
    {
        using var client = server.Client(AgentServer.Alpha);
        var docsTurn = Chat(AgentServer.Docs, new { save_conversation = true });
        docsTurn["messages"] = new object[]
        {
            new { role = "system", content = Context },
            new { role = "user", content = "Summarize the json module: " + Api.UniqueText("turn") },
        };
        using var first = await client.PostAsync("/v1/chat/completions", docsTurn);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var turn = await first.ReadJsonAsync();
        var conversation = Fusion(turn).GetProperty("conversation_id").GetString()!;
        var usage = turn.GetProperty("usage");

        // The exchange is one chunk of the sender: its prompt and its answer.
        using var stored = await client.GetAsync($"/v1/chunks/{conversation}?model={AgentServer.Docs}");
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        var tokens = (await stored.ReadJsonAsync()).GetProperty("tokens").GetInt32();
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), tokens);

        var handed = await ChatAsync(client, AgentServer.Coder, new { chunks = new[] { conversation }, shared_from = AgentServer.Docs });
        Assert.Equal("share:0-3", Fusion(handed).GetProperty("mode").GetString());
        Assert.Equal(tokens, handed.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [SkippableFact]
    public async Task A_streamed_turn_reports_its_saved_conversation_in_the_last_usage_event()
    {
        using var client = server.Client(AgentServer.Alpha);
        var body = Chat(AgentServer.Docs, new { save_conversation = true });
        body["stream"] = true;
        using var response = await client.SendStreamingAsync("/v1/chat/completions", body);
        var events = await Api.ReadEventsAsync(response);
        var withId = events.Where(e => e.Data != "[DONE]").Select(e => JsonDocument.Parse(e.Data).RootElement)
            .Where(e => e.TryGetProperty("kvfusion", out var k) && k.TryGetProperty("conversation_id", out var id) && id.ValueKind == JsonValueKind.String)
            .ToList();
        Assert.Single(withId);
    }

    [SkippableFact]
    public async Task Another_tenants_shared_cache_is_404_like_one_never_stored()
    {
        using var alpha = server.Client(AgentServer.Alpha);
        using var beta = server.Client(AgentServer.Beta);
        var id = await CreateAsync(alpha, Api.UniqueText("alpha-context"), AgentServer.Docs);
        using var response = await beta.PostAsync("/v1/chat/completions", Chat(AgentServer.Coder, new { chunks = new[] { id }, shared_from = AgentServer.Docs, recompute = "none" }));
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task A_receivers_own_cache_is_not_the_senders()
    {
        // The receiver stored it; naming it as the sender's finds nothing, so a cache never crosses models by accident.
        using var client = server.Client(AgentServer.Alpha);
        var id = await CreateAsync(client, Api.UniqueText("receiver-context"), AgentServer.Coder);
        using var response = await client.PostAsync("/v1/chat/completions", Chat(AgentServer.Coder, new { chunks = new[] { id }, shared_from = AgentServer.Docs, recompute = "none" }));
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableTheory]
    [InlineData("unknown agent", HttpStatusCode.NotFound, "{\"chunks\":[\"ID\"],\"shared_from\":\"tiny-other\"}", "tiny-other")]
    [InlineData("share without sender", HttpStatusCode.BadRequest, "{\"chunks\":[\"ID\"],\"mode\":\"share\"}", "shared_from")]
    [InlineData("sender with reuse", HttpStatusCode.BadRequest, "{\"chunks\":[\"ID\"],\"mode\":\"reuse\",\"shared_from\":\"tiny-pydocs\"}", "modes share and blend only")]
    [InlineData("ranges without a sender", HttpStatusCode.BadRequest, "{\"chunks\":[\"ID\"],\"mode\":\"blend\",\"recompute\":\"0-1\"}", "modes share and blend only")]
    [InlineData("malformed ranges", HttpStatusCode.BadRequest, "{\"chunks\":[\"ID\"],\"shared_from\":\"tiny-pydocs\",\"recompute\":\"3-1\"}", "kvfusion.recompute")]
    [InlineData("ranges past the last layer", HttpStatusCode.BadRequest, "{\"chunks\":[\"ID\"],\"shared_from\":\"tiny-pydocs\",\"recompute\":\"4-9\"}", "past the model's last layer (5)")]
    [InlineData("share with no chunks", HttpStatusCode.BadRequest, "{\"shared_from\":\"tiny-pydocs\"}", "kvfusion.chunks")]
    public async Task Bad_share_requests_are_refused_with_the_reason(string what, HttpStatusCode status, string kvfusion, string says)
    {
        Assert.NotEmpty(what);
        using var client = server.Client(AgentServer.Alpha);
        var id = await CreateAsync(client, Context, AgentServer.Docs);
        var body = $"{{\"model\":\"{AgentServer.Coder}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Which function parses JSON?\"}}],\"max_tokens\":2,\"kvfusion\":{kvfusion.Replace("ID", id, StringComparison.Ordinal)}}}";
        using var response = await client.PostAsync(Api.Url("/v1/chat/completions"), Api.Json(body));
        var problem = await Api.AssertProblemAsync(response, status);
        Assert.Contains(says, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Unknown_model_in_a_request_is_404_naming_the_agents()
    {
        using var client = server.Client(AgentServer.Alpha);
        using var response = await client.PostAsync("/v1/chat/completions", Chat("tiny-other", null));
        var problem = await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
        Assert.Contains("'tiny-pydocs', 'tiny-pydocs-coder'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void An_agent_of_another_family_is_refused_at_start_with_the_reason()
    {
        using var factory = new KvFusionServerFactory(new Dictionary<string, string?> { ["KvFusion:Agents:0"] = SharedModels.Path("zoo/mistral") });
        var e = Assert.ThrowsAny<Exception>(() => factory.CreateHttpClient());
        var refusal = Assert.IsType<ServedModelsException>(Unwrap(e));
        Assert.Contains("'mistral' is not of the family of 'tiny-pydocs'", refusal.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_profile_for_a_pair_not_served_is_refused_at_start()
    {
        using var factory = new KvFusionServerFactory(new Dictionary<string, string?>
        {
            ["KvFusion:Sharing:Profiles:0"] = RepositoryRoot.Combine("tests", "data", "sharing-profile-tiny.json"),
        });
        var e = Assert.ThrowsAny<Exception>(() => factory.CreateHttpClient());
        Assert.Contains("this service does not serve that receiver", Assert.IsType<ServedModelsException>(Unwrap(e)).Message, StringComparison.Ordinal);
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is not ServedModelsException && e.InnerException is { } inner)
        {
            e = inner;
        }

        return e;
    }

    private static async Task<string> CreateAsync(HttpClient client, string text, string model)
    {
        using var response = await client.PostAsync("/v1/chunks", new { model, chunks = new[] { new { text } } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunk = (await response.ReadJsonAsync()).GetProperty("chunks")[0];
        Assert.Equal(model, chunk.GetProperty("model").GetString());
        return chunk.GetProperty("id").GetString()!;
    }

    private static Dictionary<string, object?> Chat(string model, object? kvfusion)
    {
        var body = Api.Chat("Which function parses JSON?", maxTokens: 8, kvfusion: kvfusion);
        body["model"] = model;
        return body;
    }

    private static async Task<JsonElement> ChatAsync(HttpClient client, string model, object kvfusion)
    {
        using var response = await client.PostAsync("/v1/chat/completions", Chat(model, kvfusion));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.ReadJsonAsync();
        Assert.Equal(model, body.GetProperty("model").GetString());
        return body;
    }

    private static string? Text(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();

    private static JsonElement Fusion(JsonElement completion) => completion.GetProperty("kvfusion");
}
