using System.Net;
using System.Text.Json;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Server.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace KvFusion.Server.Tests.Endpoints;

public sealed class ChunkEndpointTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [SkippableFact]
    public async Task Posting_a_text_chunk_returns_its_id_tokens_bytes_and_codec_and_created_only_the_first_time()
    {
        using var client = server.Client();
        var text = Api.UniqueText();
        var first = await client.CreateChunkAsync(text);
        var id = first.GetProperty("id").GetString()!;
        Assert.Matches("^[0-9a-f]{64}$", id);
        Assert.True(first.GetProperty("tokens").GetInt32() > 0);
        Assert.True(first.GetProperty("bytes").GetInt64() > 0);
        Assert.False(string.IsNullOrEmpty(first.GetProperty("codec").GetString()));
        Assert.Equal("tiny-pydocs", first.GetProperty("model").GetString());
        Assert.True(first.GetProperty("created").GetBoolean());

        var again = await client.CreateChunkAsync(text);
        Assert.Equal(id, again.GetProperty("id").GetString());
        Assert.False(again.GetProperty("created").GetBoolean());
    }

    [SkippableFact]
    public async Task Posting_token_ids_gives_the_same_chunk_as_the_text_they_came_from()
    {
        using var client = server.Client();
        var text = Api.UniqueText("tokens");
        var fromText = await client.CreateChunkAsync(text);
        var tokens = server.Factory.Services.GetRequiredService<ModelRuntimeHost>().Runtime.Model.Tokenizer!.Encode(text);

        using var response = await client.PostAsync("/v1/chunks", new { chunks = new[] { new { tokens } } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var fromTokens = (await response.ReadJsonAsync()).GetProperty("chunks")[0];
        Assert.Equal(fromText.GetProperty("id").GetString(), fromTokens.GetProperty("id").GetString());
        Assert.Equal(fromText.GetProperty("tokens").GetInt32(), fromTokens.GetProperty("tokens").GetInt32());
        Assert.False(fromTokens.GetProperty("created").GetBoolean());
    }

    [SkippableFact]
    public async Task Getting_a_chunk_returns_its_metadata()
    {
        using var client = server.Client();
        var created = await client.CreateChunkAsync(Api.UniqueText());
        var id = created.GetProperty("id").GetString()!;

        using var response = await client.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var info = await response.ReadJsonAsync();
        Assert.Equal(id, info.GetProperty("id").GetString());
        Assert.Equal(created.GetProperty("tokens").GetInt32(), info.GetProperty("tokens").GetInt32());
        Assert.Equal(created.GetProperty("bytes").GetInt64(), info.GetProperty("bytes").GetInt64());
        Assert.Equal(created.GetProperty("codec").GetString(), info.GetProperty("codec").GetString());
    }

    [SkippableFact]
    public async Task Downloading_a_chunk_gives_a_container_the_reader_accepts_for_this_model()
    {
        using var client = server.Client();
        var created = await client.CreateChunkAsync(Api.UniqueText());
        var id = created.GetProperty("id").GetString()!;

        using var response = await client.GetAsync($"/v1/chunks/{id}/kv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        var blob = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(created.GetProperty("bytes").GetInt64(), blob.Length);
        var entry = KvContainerReader.Read(blob, KvContainerExpectation.FromModel(Model()));
        Assert.Equal(id, entry.Key.Id);
        Assert.Equal(created.GetProperty("tokens").GetInt32(), entry.TokenCount);
        Assert.Equal(created.GetProperty("codec").GetString(), response.Headers.GetValues("X-KvFusion-Codec").Single());
    }

    [SkippableTheory]
    [InlineData("raw")]
    [InlineData("cachegen:2")]
    public async Task Downloading_with_a_codec_re_encodes_the_container(string codec)
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText())).GetProperty("id").GetString()!;

        using var response = await client.GetAsync($"/v1/chunks/{id}/kv?codec={codec}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(codec, response.Headers.GetValues("X-KvFusion-Codec").Single());
        var blob = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(codec, KvContainerReader.ReadHeader(blob).Codec.ToString());
        Assert.Equal(id, KvContainerReader.Read(blob, KvContainerExpectation.FromModel(Model())).Key.Id);
    }

    [SkippableFact]
    public async Task Downloading_with_an_unknown_codec_is_a_bad_request()
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText())).GetProperty("id").GetString()!;
        using var response = await client.GetAsync($"/v1/chunks/{id}/kv?codec=zip9");
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task Deleting_a_chunk_answers_204_and_then_404()
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText())).GetProperty("id").GetString()!;

        using (var deleted = await client.DeleteAsync($"/v1/chunks/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using (var again = await client.DeleteAsync($"/v1/chunks/{id}"))
        {
            await Api.AssertProblemAsync(again, HttpStatusCode.NotFound);
        }

        using var get = await client.GetAsync($"/v1/chunks/{id}");
        await Api.AssertProblemAsync(get, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task Pinning_sets_pinned_until_in_the_future_and_unpinning_answers_204_then_404()
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText())).GetProperty("id").GetString()!;

        using (var pinned = await client.PostAsync($"/v1/chunks/{id}/pin", new { ttl_seconds = 120 }))
        {
            Assert.Equal(HttpStatusCode.OK, pinned.StatusCode);
            var until = (await pinned.ReadJsonAsync()).GetProperty("pinned_until").GetDateTimeOffset();
            Assert.True(until > DateTimeOffset.UtcNow.AddSeconds(60), $"pinned until {until}");
        }

        using (var info = await client.GetAsync($"/v1/chunks/{id}"))
        {
            Assert.Equal(JsonValueKind.String, (await info.ReadJsonAsync()).GetProperty("pinned_until").ValueKind);
        }

        using (var unpinned = await client.DeleteAsync($"/v1/chunks/{id}/pin"))
        {
            Assert.Equal(HttpStatusCode.NoContent, unpinned.StatusCode);
        }

        using var again = await client.DeleteAsync($"/v1/chunks/{id}/pin");
        await Api.AssertProblemAsync(again, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task Pinning_for_less_than_a_second_is_a_bad_request()
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText())).GetProperty("id").GetString()!;
        using var response = await client.PostAsync($"/v1/chunks/{id}/pin", new { ttl_seconds = 0 });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [SkippableFact]
    public async Task A_chunk_posted_with_pin_seconds_is_pinned()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/chunks", new { chunks = new[] { new { text = Api.UniqueText() } }, pin_seconds = 60 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunk = (await response.ReadJsonAsync()).GetProperty("chunks")[0];
        Assert.True(chunk.GetProperty("pinned_until").GetDateTimeOffset() > DateTimeOffset.UtcNow);
    }

    private Engine.Transformer.TransformerModel Model() =>
        server.Factory.Services.GetRequiredService<ModelRuntimeHost>().Runtime.Model;
}
