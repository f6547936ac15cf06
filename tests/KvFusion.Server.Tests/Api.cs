using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace KvFusion.Server.Tests;

/// <summary>Raw HTTP helpers: JSON in and out, server-sent events, ProblemDetails checks.</summary>
internal static partial class Api
{
    private static int _unique;

    /// <summary>A short text no other test of this run sends, so "created" is known.</summary>
    public static string UniqueText(string topic = "cache") =>
        $"The {topic} note number {Interlocked.Increment(ref _unique)} of run {Environment.ProcessId % 1000} says hello.";

    public static Uri Url(string path) => new(path, UriKind.Relative);

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string Serialize(object value) => JsonSerializer.Serialize(value);

    public static Task<HttpResponseMessage> PostAsync(this HttpClient client, string path, object body) =>
        client.PostAsync(Url(path), Json(body as string ?? Serialize(body)));

    public static Task<HttpResponseMessage> GetAsync(this HttpClient client, string path) => client.GetAsync(Url(path));

    public static Task<HttpResponseMessage> DeleteAsync(this HttpClient client, string path) => client.DeleteAsync(Url(path));

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.Clone();
    }

    /// <summary>POSTs one text chunk and returns its info (asserting 200).</summary>
    public static async Task<JsonElement> CreateChunkAsync(this HttpClient client, string text)
    {
        using var response = await client.PostAsync("/v1/chunks", new { chunks = new[] { new { text } } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.ReadJsonAsync()).GetProperty("chunks")[0];
    }

    /// <summary>
    /// Asserts a ProblemDetails answer of <paramref name="status"/> that reveals no folders or stack frames, and
    /// returns its body.
    /// </summary>
    public static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        var body = json.RootElement.Clone();
        Assert.Equal((int)status, body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("title").GetString()));
        var detail = body.GetProperty("detail").GetString();
        Assert.False(string.IsNullOrWhiteSpace(detail));
        Assert.DoesNotContain("/work", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("/tmp", detail, StringComparison.Ordinal);
        Assert.DoesNotMatch(StackFrame(), detail);
        return body;
    }

    /// <summary>The body without its per-request traceId, with <paramref name="id"/> replaced by a placeholder.</summary>
    public static string Normalized(JsonElement problem, string id)
    {
        var fields = problem.EnumerateObject().Where(p => p.Name is not ("traceId" or "trace_id")).ToDictionary(p => p.Name, p => p.Value.ToString());
        return Serialize(fields).Replace(id, "{id}", StringComparison.Ordinal);
    }

    /// <summary>Reads server-sent events until the stream ends: (event name or null, data).</summary>
    public static async Task<List<(string? Event, string Data)>> ReadEventsAsync(HttpResponseMessage response, CancellationToken ct = default)
    {
        var events = new List<(string?, string)>();
        await foreach (var e in StreamEventsAsync(response, ct))
        {
            events.Add(e);
        }

        return events;
    }

    /// <summary>Server-sent events as they arrive.</summary>
    public static async IAsyncEnumerable<(string? Event, string Data)> StreamEventsAsync(HttpResponseMessage response, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        string? name = null;
        var data = new StringBuilder();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length > 0 || name is not null)
                {
                    yield return (name, data.ToString());
                }

                name = null;
                data.Clear();
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Append(line[6..]);
            }
        }

        if (data.Length > 0)
        {
            yield return (name, data.ToString());
        }
    }

    /// <summary>A POST whose answer is read as it streams.</summary>
    public static async Task<HttpResponseMessage> SendStreamingAsync(this HttpClient client, string path, object body, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Url(path)) { Content = Json(body as string ?? Serialize(body)) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    /// <summary>A chat request body of one user message.</summary>
    public static Dictionary<string, object?> Chat(string user, int maxTokens = 4, object? kvfusion = null, float? temperature = 0)
    {
        var body = new Dictionary<string, object?>
        {
            ["messages"] = new[] { new { role = "user", content = user } },
            ["max_tokens"] = maxTokens,
        };
        if (temperature is { } t)
        {
            body["temperature"] = t;
        }

        if (kvfusion is not null)
        {
            body["kvfusion"] = kvfusion;
        }

        return body;
    }

    [GeneratedRegex(@"\bat [A-Za-z_][\w.]*\.\w+\(|\.cs:line \d+")]
    private static partial Regex StackFrame();
}
