using KvFusion.Client;
using KvFusion.SemanticKernel.Chat;
using Microsoft.Extensions.AI;
using static KvFusion.SemanticKernel.Tests.Chat.ChatTestTexts;
using static KvFusion.SemanticKernel.Tests.Chat.KvFusionChatClientTests;

namespace KvFusion.SemanticKernel.Tests.Chat;

/// <summary>A real service serving two agents of one family (tiny-pydocs and tiny-pydocs-coder) with their sharing profile.</summary>
public sealed class AgentServerFixture : IDisposable
{
    private readonly Lazy<KvFusionServerFactory> _factory = new(() => new KvFusionServerFactory(new Dictionary<string, string?>
    {
        ["KvFusion:Agents:0"] = SharedModels.Path(Coder),
        ["KvFusion:Sharing:Profiles:0"] = RepositoryRoot.Combine("tests", "data", "sharing-profile-tiny.json"),
    }));

    public const string Docs = "tiny-pydocs";
    public const string Coder = "tiny-pydocs-coder";

    public KvFusionServerFactory Factory => _factory.Value;

    public void Dispose()
    {
        if (_factory.IsValueCreated)
        {
            _factory.Value.Dispose();
        }
    }
}

/// <summary>Through IChatClient, one agent answers from the context another agent stored, by reference.</summary>
public sealed class KvFusionServiceChatClientAgentTests(AgentServerFixture server) : IClassFixture<AgentServerFixture>
{
    [SkippableFact]
    public async Task A_call_naming_another_agent_fuses_that_agents_caches_with_the_profiled_ranges()
    {
        using var http = server.Factory.CreateHttpClient();
        using var rest = new KvFusionClient(http);
        using var client = new KvFusionServiceChatClient(rest);
        var options = new ChatOptions
        {
            ModelId = AgentServerFixture.Coder,
            Temperature = 0,
            MaxOutputTokens = 8,
            AdditionalProperties = new() { [KvFusionReport.SharedFromProperty] = AgentServerFixture.Docs },
        };

        var response = await client.GetResponseAsync(Conversation((Len, null), (Zip, null)), options);

        var report = ReportOf(response);
        Assert.Equal("share:0-3", report.Mode);
        Assert.Equal(AgentServerFixture.Coder, response.ModelId);
        Assert.True(response.Usage!.CachedInputTokenCount > 0);

        // The context was stored by the sender, under its model, and only there.
        foreach (var id in report.ChunkIds)
        {
            Assert.Equal(AgentServerFixture.Docs, (await rest.GetChunkAsync(id, null, AgentServerFixture.Docs)).Model);
            var other = await Assert.ThrowsAsync<KvFusionApiException>(() => rest.GetChunkAsync(id, null, AgentServerFixture.Coder));
            Assert.Equal(System.Net.HttpStatusCode.NotFound, other.StatusCode);
        }
    }

    [SkippableFact]
    public async Task Share_recomputing_every_layer_answers_as_the_receiver_reading_the_text()
    {
        using var http = server.Factory.CreateHttpClient();
        using var rest = new KvFusionClient(http);
        using var client = new KvFusionServiceChatClient(rest);
        var own = new ChatOptions { ModelId = AgentServerFixture.Coder, Temperature = 0, MaxOutputTokens = 12, AdditionalProperties = new() { [KvFusionReport.ModeProperty] = "full" } };
        var shared = new ChatOptions
        {
            ModelId = AgentServerFixture.Coder,
            Temperature = 0,
            MaxOutputTokens = 12,
            AdditionalProperties = new() { [KvFusionReport.SharedFromProperty] = AgentServerFixture.Docs, [KvFusionReport.ModeProperty] = "share:0-5" },
        };

        var text = await client.GetResponseAsync(Conversation((Len, null)), own);
        var byReference = await client.GetResponseAsync(Conversation((Len, null)), shared);

        Assert.Equal(text.Text, byReference.Text);
        Assert.Equal("share:0-5", ReportOf(byReference).Mode);
    }

    [SkippableTheory]
    [InlineData("share", null, "needs ChatOptions.AdditionalProperties[\"kvfusion.shared_from\"]")]
    [InlineData("reuse", AgentServerFixture.Docs, "needs mode share, blend or no mode")]
    [InlineData(null, "", "must be a model id")]
    public async Task Share_settings_that_do_not_fit_are_refused_before_any_request(string? mode, string? sharedFrom, string says)
    {
        using var http = server.Factory.CreateHttpClient();
        using var rest = new KvFusionClient(http);
        using var client = new KvFusionServiceChatClient(rest);
        var properties = new AdditionalPropertiesDictionary();
        if (mode is not null)
        {
            properties[KvFusionReport.ModeProperty] = mode;
        }

        if (sharedFrom is not null)
        {
            properties[KvFusionReport.SharedFromProperty] = sharedFrom;
        }

        var options = new ChatOptions { ModelId = AgentServerFixture.Coder, MaxOutputTokens = 2, AdditionalProperties = properties };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Conversation((Len, null)), options));
        Assert.Contains(says, e.Message, StringComparison.Ordinal);
    }
}
