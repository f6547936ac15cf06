using System.Net;
using KvFusion.Client.Tests.Support;

namespace KvFusion.Client.Tests;

/// <summary>Validation of <see cref="KvFusionClientOptions"/> and the constructors.</summary>
public sealed class OptionsTests
{
    [Fact]
    public void The_options_constructor_needs_a_base_address()
    {
        var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(new KvFusionClientOptions()));

        Assert.Equal("options", e.ParamName);
        Assert.Contains("BaseAddress is required", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => new KvFusionClient((KvFusionClientOptions)null!));
        Assert.Throws<ArgumentNullException>(() => new KvFusionClient((HttpClient)null!));
    }

    [Theory]
    [InlineData("ftp://host/")]
    [InlineData("file:///tmp/x")]
    [InlineData("http://host/?a=1")]
    [InlineData("http://host/#frag")]
    public void A_base_address_must_be_plain_http_or_https(string address)
    {
        var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(new KvFusionClientOptions { BaseAddress = new Uri(address) }));

        Assert.Contains("BaseAddress", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relative_base_address_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(new KvFusionClientOptions { BaseAddress = new Uri("/v1", UriKind.Relative) }));

        Assert.Contains("absolute http or https", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("key with space")]
    [InlineData("key\r\nX-Injected: 1")]
    [InlineData("clé")]
    public void An_api_key_must_be_header_safe(string key)
    {
        var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(new KvFusionClientOptions { BaseAddress = new Uri("http://host/"), ApiKey = key }));

        Assert.Contains("ApiKey", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_timeout_must_be_positive_or_infinite()
    {
        foreach (var timeout in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), TimeSpan.FromDays(30) })
        {
            var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(new KvFusionClientOptions { BaseAddress = new Uri("http://host/"), Timeout = timeout }));
            Assert.Contains("Timeout", e.Message, StringComparison.Ordinal);
        }

        using var infinite = new KvFusionClient(new KvFusionClientOptions { BaseAddress = new Uri("http://host/"), Timeout = Timeout.InfiniteTimeSpan });
        Assert.Equal(TimeSpan.FromSeconds(100), new KvFusionClientOptions().Timeout);
    }

    [Fact]
    public void An_http_client_without_base_address_needs_one_in_the_options()
    {
        using var http = new HttpClient();
        var e = Assert.Throws<ArgumentException>(() => new KvFusionClient(http));
        Assert.Equal("httpClient", e.ParamName);

        using var client = new KvFusionClient(http, new KvFusionClientOptions { BaseAddress = new Uri("http://host:8080") });
        Assert.Equal(new Uri("http://host:8080/"), client.BaseAddress);
    }

    [Fact]
    public void An_http_client_base_address_must_be_http()
    {
        using var http = new HttpClient { BaseAddress = new Uri("ftp://host/") };

        Assert.Throws<ArgumentException>(() => new KvFusionClient(http));
    }

    [Fact]
    public async Task A_path_prefix_of_the_base_address_is_kept()
    {
        var handler = new CannedHandler(_ => new HttpResponseMessage(HttpStatusCode.OK));
        using var http = new HttpClient(handler) { BaseAddress = new Uri("http://gateway.test/kvfusion") };
        using var client = new KvFusionClient(http);

        await client.IsAliveAsync();

        Assert.Equal(new Uri("http://gateway.test/kvfusion/healthz"), handler.Last.Uri);
    }

    [Fact]
    public async Task Disposing_leaves_a_given_http_client_usable_and_then_refuses_calls()
    {
        var handler = new CannedHandler(_ => new HttpResponseMessage(HttpStatusCode.OK));
        using var http = new HttpClient(handler) { BaseAddress = new Uri("http://kvfusion.test/") };
        var client = new KvFusionClient(http);
        client.Dispose();
        client.Dispose();

        using var response = await http.GetAsync(new Uri("healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ListModelsAsync());
    }
}
