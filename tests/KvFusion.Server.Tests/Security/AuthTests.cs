using System.Net;
using System.Net.Http.Headers;

namespace KvFusion.Server.Tests.Security;

public sealed class AuthTests(KeyedServer server) : IClassFixture<KeyedServer>
{
    [SkippableFact]
    public async Task A_request_without_a_key_is_401_with_a_bearer_challenge()
    {
        using var client = server.Client();
        using var response = await client.GetAsync("/v1/models");
        await Api.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
    }

    [SkippableFact]
    public async Task A_request_with_a_wrong_key_is_401()
    {
        using var client = server.Client("not-a-key-of-this-service-at-all");
        using var response = await client.GetAsync("/v1/models");
        await Api.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
        Assert.NotEmpty(response.Headers.WwwAuthenticate);
    }

    [SkippableFact]
    public async Task A_key_sent_with_another_scheme_than_bearer_is_401()
    {
        using var client = server.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", KeyedServer.Alpha);
        using var response = await client.GetAsync("/v1/models");
        await Api.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [SkippableFact]
    public async Task A_valid_key_is_served()
    {
        using var client = server.Client(KeyedServer.Alpha);
        using var response = await client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [SkippableFact]
    public async Task Health_needs_no_key()
    {
        using var client = server.Client();
        using var response = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}

/// <summary>No keys configured: the service serves its own machine only.</summary>
public sealed class AnonymousAuthTests
{
    [SkippableFact]
    public async Task Without_keys_a_remote_client_is_401()
    {
        using var factory = new KvFusionServerFactory { RemoteIpAddress = IPAddress.Parse("203.0.113.9") };
        using var client = factory.CreateHttpClient();
        using var response = await client.GetAsync("/v1/models");
        await Api.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
    }

    [SkippableFact]
    public async Task Without_keys_a_loopback_client_is_served()
    {
        using var factory = new KvFusionServerFactory { RemoteIpAddress = IPAddress.Loopback };
        using var client = factory.CreateHttpClient();
        using var response = await client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
