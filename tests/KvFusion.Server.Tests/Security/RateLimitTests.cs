using System.Net;

namespace KvFusion.Server.Tests.Security;

public sealed class RateLimitTests(RateLimitTests.Server server) : IClassFixture<RateLimitTests.Server>
{
    public const string First = "first-limited-key-0123456789";
    public const string Second = "second-limited-key-012345678";
    public const string Third = "third-limited-key-0123456789";

    public sealed class Server() : ServerFixture(new Dictionary<string, string?>
    {
        ["KvFusion:RateLimit:Burst"] = "3",
        ["KvFusion:RateLimit:PerSecond"] = "1",
        ["KvFusion:Auth:Keys:0:Key"] = First,
        ["KvFusion:Auth:Keys:0:Tenant"] = "one",
        ["KvFusion:Auth:Keys:1:Key"] = Second,
        ["KvFusion:Auth:Keys:1:Tenant"] = "two",
        ["KvFusion:Auth:Keys:2:Key"] = Third,
        ["KvFusion:Auth:Keys:2:Tenant"] = "three",
    });

    [SkippableFact]
    public async Task A_key_past_its_burst_gets_429_with_retry_after()
    {
        using var client = server.Client(First);
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        // The bucket holds 3; one may refill during the burst, so a few more quick requests must meet the limit.
        for (var i = 0; i < 6 && limited is null; i++)
        {
            var response = await client.GetAsync("/v1/models");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
            else
            {
                response.Dispose();
            }
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], statuses.Take(3));
        Assert.NotNull(limited);
        using (limited)
        {
            await Api.AssertProblemAsync(limited, HttpStatusCode.TooManyRequests);
            Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }
    }

    [SkippableFact]
    public async Task Another_key_is_not_limited_by_a_key_past_its_burst()
    {
        using var busy = server.Client(Second);
        using var other = server.Client(Third);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var limited = await busy.GetAsync("/v1/models");
            statuses.Add(limited.StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        using var response = await other.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [SkippableFact]
    public async Task Operations_endpoints_are_not_rate_limited()
    {
        using var client = server.Client();
        for (var i = 0; i < 6; i++)
        {
            using var response = await client.GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }
}
