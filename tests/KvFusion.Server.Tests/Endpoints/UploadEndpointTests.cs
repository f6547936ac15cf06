using System.Net;
using System.Net.Http.Headers;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;

namespace KvFusion.Server.Tests.Endpoints;

/// <summary>PUT /v1/chunks/{id}/kv: a container is verified whole, and nothing is stored when it is refused.</summary>
public sealed class UploadEndpointTests(UploadEndpointTests.Server server) : IClassFixture<UploadEndpointTests.Server>
{
    public sealed class Server() : ServerFixture(new Dictionary<string, string?> { ["KvFusion:Limits:MaxKvUploadBytes"] = "262144" });

    [SkippableFact]
    public async Task A_downloaded_container_put_back_after_delete_is_created_and_readable_and_a_second_put_answers_200()
    {
        using var client = server.Client();
        var (id, blob) = await DownloadAndDeleteAsync(client);

        using (var put = await PutAsync(client, id, blob))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            var info = await put.ReadJsonAsync();
            Assert.Equal(id, info.GetProperty("id").GetString());
            Assert.True(info.GetProperty("created").GetBoolean());
        }

        using (var get = await client.GetAsync($"/v1/chunks/{id}"))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        using var again = await PutAsync(client, id, blob);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.False((await again.ReadJsonAsync()).GetProperty("created").GetBoolean());
    }

    [SkippableFact]
    public async Task A_container_with_a_corrupted_section_byte_is_refused_and_nothing_is_stored()
    {
        using var client = server.Client();
        var (id, blob) = await DownloadAndDeleteAsync(client);
        blob[^10] ^= 0x5A;
        await AssertRefusedAsync(client, id, blob);
    }

    [SkippableFact]
    public async Task A_truncated_container_is_refused_and_nothing_is_stored()
    {
        using var client = server.Client();
        var (id, blob) = await DownloadAndDeleteAsync(client);
        await AssertRefusedAsync(client, id, blob[..(blob.Length / 2)]);
    }

    [SkippableFact]
    public async Task A_container_of_another_chunk_put_under_a_different_id_is_refused()
    {
        using var client = server.Client();
        var (_, blob) = await DownloadAndDeleteAsync(client);
        var (other, _) = await DownloadAndDeleteAsync(client);
        await AssertRefusedAsync(client, other, blob);
    }

    [SkippableFact]
    public async Task Garbage_bytes_are_refused_and_nothing_is_stored()
    {
        using var client = server.Client();
        var (id, _) = await DownloadAndDeleteAsync(client);
        var garbage = new byte[2000];
        new Random(7).NextBytes(garbage);
        await AssertRefusedAsync(client, id, garbage);
    }

    [SkippableFact]
    public async Task A_container_from_another_model_is_refused()
    {
        using var client = server.Client();
        var (id, _) = await DownloadAndDeleteAsync(client);
        // KvTestEntries claims fingerprints of no real model; key it as this chunk so only the model check can refuse it.
        var foreign = KvTestEntries.Random(3, tokens: 8, key: new CacheKey(CacheEntryKind.Chunk, id, "sink:bos"));
        await AssertRefusedAsync(client, id, KvTestEntries.RawContainer(foreign));
    }

    [SkippableFact]
    public async Task A_container_keyed_as_the_id_but_holding_another_chunks_tokens_is_refused()
    {
        using var client = server.Client();
        var (id, _) = await DownloadAndDeleteAsync(client);
        var (_, other) = await DownloadAndDeleteAsync(client);
        var entry = KvContainerReader.Read(other);
        // The header claims the id; only hashing its token ids can tell it is another chunk's KV.
        var forged = new CachedKv(new CacheKey(CacheEntryKind.Chunk, id, entry.Key.Variant), entry.ModelFingerprint, entry.TokenizerFingerprint,
            [.. entry.Tokens], entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.Keys.ToArray(), entry.Values.ToArray());
        await AssertRefusedAsync(client, id, KvContainerWriter.ToArray(forged, KvCodecSpec.Raw));
    }

    [SkippableFact]
    public async Task A_container_of_another_variant_is_refused()
    {
        using var client = server.Client();
        var (id, blob) = await DownloadAndDeleteAsync(client);
        var entry = KvContainerReader.Read(blob);
        var other = new CachedKv(new CacheKey(CacheEntryKind.Chunk, id, "sink:none"), entry.ModelFingerprint, entry.TokenizerFingerprint,
            [.. entry.Tokens], entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.Keys.ToArray(), entry.Values.ToArray());
        await AssertRefusedAsync(client, id, KvContainerWriter.ToArray(other, KvCodecSpec.Raw));
    }

    [SkippableFact]
    public async Task A_re_encoded_container_is_accepted_in_its_codec()
    {
        using var client = server.Client();
        var id = (await client.CreateChunkAsync(Api.UniqueText("cachegen"))).GetProperty("id").GetString()!;
        using var kv = await client.GetAsync($"/v1/chunks/{id}/kv?codec=cachegen:2");
        var blob = await kv.Content.ReadAsByteArrayAsync();
        using (var deleted = await client.DeleteAsync($"/v1/chunks/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var put = await PutAsync(client, id, blob);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal("cachegen:2", (await put.ReadJsonAsync()).GetProperty("codec").GetString());
    }

    [SkippableFact]
    public async Task An_upload_larger_than_the_limit_is_refused_with_413()
    {
        using var client = server.Client();
        var (id, _) = await DownloadAndDeleteAsync(client);
        using var response = await PutAsync(client, id, new byte[300_000]);
        await Api.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
        using var get = await client.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [SkippableFact]
    public async Task An_empty_upload_is_a_bad_request()
    {
        using var client = server.Client();
        var (id, _) = await DownloadAndDeleteAsync(client);
        using var response = await PutAsync(client, id, []);
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    private static async Task AssertRefusedAsync(HttpClient client, string id, byte[] blob)
    {
        using (var put = await PutAsync(client, id, blob))
        {
            await Api.AssertProblemAsync(put, HttpStatusCode.UnprocessableEntity);
        }

        using var get = await client.GetAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    private static async Task<HttpResponseMessage> PutAsync(HttpClient client, string id, byte[] blob)
    {
        using var content = new ByteArrayContent(blob);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return await client.PutAsync(Api.Url($"/v1/chunks/{id}/kv"), content);
    }

    /// <summary>A fresh chunk's container (raw, so any changed byte is in a section or the header), and the chunk deleted.</summary>
    private static async Task<(string Id, byte[] Blob)> DownloadAndDeleteAsync(HttpClient client)
    {
        var id = (await client.CreateChunkAsync(Api.UniqueText("upload"))).GetProperty("id").GetString()!;
        using var kv = await client.GetAsync($"/v1/chunks/{id}/kv?codec=raw");
        Assert.Equal(HttpStatusCode.OK, kv.StatusCode);
        var blob = await kv.Content.ReadAsByteArrayAsync();
        using var deleted = await client.DeleteAsync($"/v1/chunks/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        return (id, blob);
    }
}
