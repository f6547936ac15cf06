using System.Net;

namespace KvFusion.Server.Tests.Security;

/// <summary>Another tenant's chunk is indistinguishable from one never stored.</summary>
public sealed class TenantIsolationTests(KeyedServer server) : IClassFixture<KeyedServer>
{
    private static readonly string Unknown = new('c', 64);

    [SkippableTheory]
    [InlineData("GET", "")]
    [InlineData("GET", "/kv")]
    [InlineData("DELETE", "")]
    [InlineData("POST", "/pin")]
    [InlineData("DELETE", "/pin")]
    public async Task Another_tenants_chunk_answers_exactly_like_a_chunk_never_stored(string method, string suffix)
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var beta = server.Client(KeyedServer.Beta);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("alpha"))).GetProperty("id").GetString()!;
        if (method == "DELETE" && suffix == "/pin")
        {
            using var pin = await alpha.PostAsync($"/v1/chunks/{id}/pin", new { ttl_seconds = 60 });
            Assert.Equal(HttpStatusCode.OK, pin.StatusCode);
        }

        using var theirs = await SendAsync(beta, method, $"/v1/chunks/{id}{suffix}");
        using var never = await SendAsync(beta, method, $"/v1/chunks/{Unknown}{suffix}");
        var theirsBody = await Api.AssertProblemAsync(theirs, HttpStatusCode.NotFound);
        var neverBody = await Api.AssertProblemAsync(never, HttpStatusCode.NotFound);
        Assert.Equal(Api.Normalized(neverBody, Unknown), Api.Normalized(theirsBody, id));

        // And alpha's chunk is untouched.
        using var still = await alpha.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    [SkippableFact]
    public async Task Fusing_another_tenants_chunk_is_404()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var beta = server.Client(KeyedServer.Beta);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("fuse"))).GetProperty("id").GetString()!;
        using var response = await beta.PostAsync("/v1/chat/completions", Api.Chat("Hello?", maxTokens: 2, kvfusion: new { chunks = new[] { id } }));
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task Another_tenants_document_is_404()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var beta = server.Client(KeyedServer.Beta);
        using var created = await alpha.PostAsync("/v1/documents", new { text = Api.UniqueText("document"), chunk_tokens = 32 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.ReadJsonAsync()).GetProperty("id").GetString();
        using var response = await beta.GetAsync($"/v1/documents/{id}");
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task Naming_another_tenant_without_an_admin_key_is_403()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var beta = server.Client(KeyedServer.Beta);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("named"))).GetProperty("id").GetString()!;
        using var response = await beta.GetAsync($"/v1/chunks/{id}?tenant=alpha");
        await Api.AssertProblemAsync(response, HttpStatusCode.Forbidden);
    }

    [SkippableFact]
    public async Task Downloading_another_tenants_container_by_name_without_an_admin_key_is_403()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var beta = server.Client(KeyedServer.Beta);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("namedkv"))).GetProperty("id").GetString()!;
        using var response = await beta.GetAsync($"/v1/chunks/{id}/kv?tenant=alpha");
        await Api.AssertProblemAsync(response, HttpStatusCode.Forbidden);
    }

    [SkippableFact]
    public async Task An_admin_key_naming_a_tenant_can_download_its_container()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var admin = server.Client(KeyedServer.Admin);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("adminkv"))).GetProperty("id").GetString()!;
        using var response = await admin.GetAsync($"/v1/chunks/{id}/kv?tenant=alpha");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
    }

    [SkippableFact]
    public async Task Naming_ones_own_tenant_needs_no_admin_key()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("own"))).GetProperty("id").GetString()!;
        using var response = await alpha.GetAsync($"/v1/chunks/{id}?tenant=alpha");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [SkippableFact]
    public async Task An_admin_key_naming_a_tenant_can_get_pin_and_delete_its_chunk()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var admin = server.Client(KeyedServer.Admin);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("admin"))).GetProperty("id").GetString()!;

        using (var get = await admin.GetAsync($"/v1/chunks/{id}?tenant=alpha"))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        using (var pin = await admin.PostAsync($"/v1/chunks/{id}/pin?tenant=alpha", new { ttl_seconds = 60 }))
        {
            Assert.Equal(HttpStatusCode.OK, pin.StatusCode);
        }

        using (var seen = await alpha.GetAsync($"/v1/chunks/{id}"))
        {
            Assert.True((await seen.ReadJsonAsync()).TryGetProperty("pinned_until", out _));
        }

        using (var delete = await admin.DeleteAsync($"/v1/chunks/{id}?tenant=alpha"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        using var gone = await alpha.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [SkippableFact]
    public async Task An_admin_key_without_a_tenant_sees_only_its_own_namespace()
    {
        using var alpha = server.Client(KeyedServer.Alpha);
        using var admin = server.Client(KeyedServer.Admin);
        var id = (await alpha.CreateChunkAsync(Api.UniqueText("ownspace"))).GetProperty("id").GetString()!;
        using var response = await admin.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [SkippableFact]
    public async Task An_admin_naming_an_invalid_tenant_is_a_bad_request()
    {
        using var admin = server.Client(KeyedServer.Admin);
        using var response = await admin.GetAsync($"/v1/chunks/{Unknown}?tenant=..%2F..");
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, string method, string path) => method switch
    {
        "GET" => client.GetAsync(path),
        "DELETE" => client.DeleteAsync(path),
        _ => client.PostAsync(path, new { ttl_seconds = 60 }),
    };
}
