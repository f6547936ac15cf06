using System.Net;
using KvFusion.Client.Contracts;

namespace KvFusion.Client.Tests;

/// <summary>The client against a real server with API keys, tenants and a tight rate limit.</summary>
public sealed class KeyedServerFixture : IDisposable
{
    public const string AdminKey = "kvf-admin-0123456789abcdef";
    public const string AlphaKey = "kvf-alpha-0123456789abcdef";
    public const string BetaKey = "kvf-beta-00123456789abcdef";
    public const string LimitedKey = "kvf-limited-0123456789abcd";

    private readonly Lock _gate = new();
    private readonly List<IDisposable> _owned = [];
    private KvFusionServerFactory? _factory;

    /// <summary>A client of the keyed server sending <paramref name="apiKey"/>; skips when ../shared is absent.</summary>
    public KvFusionClient Client(string? apiKey)
    {
        Skip.IfNot(SharedData.IsPresent, "../shared/models/tiny-pydocs is not present beside the checkout: the round trips need the real server and its model");
        lock (_gate)
        {
            _factory ??= new KvFusionServerFactory(new Dictionary<string, string?>
            {
                ["KvFusion:Auth:Keys:0:Key"] = AdminKey,
                ["KvFusion:Auth:Keys:0:Tenant"] = "ops",
                ["KvFusion:Auth:Keys:0:Admin"] = "true",
                ["KvFusion:Auth:Keys:1:Key"] = AlphaKey,
                ["KvFusion:Auth:Keys:1:Tenant"] = "alpha",
                ["KvFusion:Auth:Keys:2:Key"] = BetaKey,
                ["KvFusion:Auth:Keys:2:Tenant"] = "beta",
                ["KvFusion:Auth:Keys:3:Key"] = LimitedKey,
                ["KvFusion:Auth:Keys:3:Tenant"] = "limited",
                ["KvFusion:RateLimit:Burst"] = "50",
                ["KvFusion:RateLimit:PerSecond"] = "1",
            });
            var http = _factory.CreateHttpClient();
            var client = new KvFusionClient(http, new KvFusionClientOptions { ApiKey = apiKey });
            _owned.Add(client);
            _owned.Add(http);
            return client;
        }
    }

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _factory?.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class KeyedServerGroup : ICollectionFixture<KeyedServerFixture>
{
    public const string Name = "KvFusion server with keys";
}

[Collection(KeyedServerGroup.Name)]
public sealed class ServerAuthTests(KeyedServerFixture server)
{
    private const string Text = "The pathlib module treats paths as objects.";

    [SkippableFact]
    public async Task Without_a_valid_key_the_api_answers_401_as_problem_details_but_health_is_open()
    {
        foreach (var key in new string?[] { null, "kvf-wrong-0123456789abcdef" })
        {
            var client = server.Client(key);
            var e = await Assert.ThrowsAsync<KvFusionApiException>(() => client.ListModelsAsync());

            Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
            Assert.StartsWith("401 ", e.Message, StringComparison.Ordinal);
            Assert.True(await client.IsAliveAsync());
            Assert.Equal("ready", (await client.GetReadinessAsync()).Status);
        }
    }

    [SkippableFact]
    public async Task A_tenant_sees_only_its_own_chunks_and_an_admin_names_another_tenant()
    {
        var alpha = server.Client(KeyedServerFixture.AlphaKey);
        var beta = server.Client(KeyedServerFixture.BetaKey);
        var admin = server.Client(KeyedServerFixture.AdminKey);
        var chunk = await alpha.CreateChunkAsync(Text);

        Assert.Equal(chunk.Id, (await alpha.GetChunkAsync(chunk.Id)).Id);
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<KvFusionApiException>(() => beta.GetChunkAsync(chunk.Id))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<KvFusionApiException>(() => beta.GetChunkAsync(chunk.Id, tenant: "alpha"))).StatusCode);
        Assert.False(await beta.DeleteChunkAsync(chunk.Id));

        Assert.Equal(chunk.Id, (await admin.GetChunkAsync(chunk.Id, tenant: "alpha")).Id);
        var pinned = await admin.PinChunkAsync(chunk.Id, TimeSpan.FromMinutes(1), tenant: "alpha");
        Assert.NotNull(pinned.PinnedUntil);
        Assert.True(await admin.UnpinChunkAsync(chunk.Id, tenant: "alpha"));
        Assert.Equal(HttpStatusCode.BadRequest, (await Assert.ThrowsAsync<KvFusionApiException>(() => admin.GetChunkAsync(chunk.Id, tenant: "no such/tenant"))).StatusCode);
        Assert.True(await admin.DeleteChunkAsync(chunk.Id, tenant: "alpha"));
        Assert.Equal(HttpStatusCode.NotFound, (await Assert.ThrowsAsync<KvFusionApiException>(() => alpha.GetChunkAsync(chunk.Id))).StatusCode);
    }

    [SkippableFact]
    public async Task Over_the_rate_limit_the_client_sees_429_with_Retry_After()
    {
        var limited = server.Client(KeyedServerFixture.LimitedKey);
        KvFusionApiException? limitedBy = null;
        for (var i = 0; i < 200 && limitedBy is null; i++)
        {
            try
            {
                await limited.ListModelsAsync();
            }
            catch (KvFusionApiException e)
            {
                limitedBy = e;
            }
        }

        Assert.NotNull(limitedBy);
        Assert.Equal(HttpStatusCode.TooManyRequests, limitedBy.StatusCode);
        Assert.NotNull(limitedBy.RetryAfter);
        Assert.True(limitedBy.RetryAfter >= TimeSpan.FromSeconds(1));
        Assert.Equal("https://kvfusion.dev/problems/rate_limited", limitedBy.ProblemType);
        Assert.StartsWith("429 Too many requests: ", limitedBy.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Bad_requests_come_back_as_problem_details_the_client_reads()
    {
        var client = server.Client(KeyedServerFixture.AlphaKey);

        var badCodec = await Assert.ThrowsAsync<KvFusionApiException>(async () =>
        {
            var chunk = await client.CreateChunkAsync(Text + " Again.");
            await client.GetChunkKvAsync(chunk.Id, codec: "zip&x=1");
        });
        Assert.Equal(HttpStatusCode.BadRequest, badCodec.StatusCode);
        Assert.Contains("zip&x=1", badCodec.Detail, StringComparison.Ordinal);

        var notAContainer = await Assert.ThrowsAsync<KvFusionApiException>(() => client.UploadChunkKvAsync(new string('a', 64), new byte[] { 1, 2, 3, 4 }));
        Assert.InRange((int)notAContainer.StatusCode, 400, 499);
        Assert.NotNull(notAContainer.Detail);

        var missingDocument = await Assert.ThrowsAsync<KvFusionApiException>(() => client.GetDocumentAsync(new string('b', 64)));
        Assert.Equal(HttpStatusCode.NotFound, missingDocument.StatusCode);

        var unknownChunk = await Assert.ThrowsAsync<KvFusionApiException>(() => client.ChatCompletionAsync(new ChatCompletionRequest
        {
            Messages = [new ChatMessage { Role = "user", Content = "Hi" }],
            MaxTokens = 2,
            Kvfusion = new FusionOptions { Chunks = [new string('c', 64)], Mode = "reuse" },
        }));
        Assert.InRange((int)unknownChunk.StatusCode, 400, 499);
    }
}
