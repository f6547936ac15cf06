using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.EndToEnd.Tests;

/// <summary>Raw HTTP calls over the wire contracts, for tests that set up state or check what a client should not hide.</summary>
internal static class Http
{
    /// <summary>Text that no earlier run stored: a rerun against a shared Redis must not find its chunks already there.</summary>
    public static string UniqueText(string topic) =>
        $"{topic} Run {Guid.NewGuid():N}. The function returns a list of the keys in the dictionary, sorted by their values in ascending order.";

    public static async Task<ChunkInfo> CreateChunkAsync(HttpClient http, string text)
    {
        using var response = await http.PostAsJsonAsync(
            new Uri("v1/chunks", UriKind.Relative),
            new CreateChunksRequest { Chunks = [new ChunkSource { Text = text }] },
            KvFusionJsonContext.Default.CreateChunksRequest);
        await EnsureAsync(response, HttpStatusCode.OK);
        var created = await response.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.CreateChunksResponse);
        return Assert.Single(created!.Chunks);
    }

    public static async Task<ChatCompletion> ChatAsync(HttpClient http, ChatCompletionRequest request)
    {
        using var response = await http.PostAsJsonAsync(new Uri("v1/chat/completions", UriKind.Relative), request, KvFusionJsonContext.Default.ChatCompletionRequest);
        await EnsureAsync(response, HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.ChatCompletion))!;
    }

    /// <summary>Polls GET /v1/chunks/{id} until 200 (another replica's write-behind reaching the shared tier).</summary>
    public static async Task<ChunkInfo> WaitForChunkAsync(HttpClient http, string id, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await http.GetAsync(new Uri($"v1/chunks/{id}", UriKind.Relative));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return (await response.Content.ReadFromJsonAsync(KvFusionJsonContext.Default.ChunkInfo))!;
            }

            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"GET /v1/chunks/{id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.True(clock.Elapsed < timeout, $"chunk {id} did not appear within {timeout.TotalSeconds:0} s");
            await Task.Delay(100);
        }
    }

    /// <summary>Asserts the status, with the body (a ProblemDetails) in the message when it differs.</summary>
    public static async Task EnsureAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        if (response.StatusCode != expected)
        {
            Assert.Fail($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: expected {(int)expected}, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}
