using System.Net;
using System.Text.Json;

namespace KvFusion.Server.Tests.Endpoints;

public sealed class DocumentEndpointTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static readonly string[] Paragraphs =
    [
        "The reader opens a file in text mode and yields every line without its newline, so callers can stream large logs.",
        "A parser takes those lines, skips blank ones and comments, and builds a dictionary of keys and their values.",
        "When a key repeats, the later value wins; a warning names the line number of the first definition it replaced.",
        "Finally the writer sorts the keys, quotes values holding spaces, and saves the result next to the original file.",
    ];

    // Distinct paragraphs, so no two chunks of one document are the same chunk; the topic makes the first one new.
    private static string Document(string topic) => topic + "\n\n" + string.Join("\n\n", Paragraphs);

    [SkippableFact]
    public async Task Posting_a_document_chunks_it_and_answers_201_with_its_chunks()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/documents", new { text = Document(Api.UniqueText("doc")), name = "notes", chunk_tokens = 32 });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var document = await response.ReadJsonAsync();
        Assert.Matches("^[0-9a-f]{64}$", document.GetProperty("id").GetString());
        Assert.Equal("notes", document.GetProperty("name").GetString());
        var chunks = document.GetProperty("chunks").EnumerateArray().ToList();
        Assert.True(chunks.Count > 1, $"{chunks.Count} chunks");
        Assert.All(chunks, c => Assert.True(c.GetProperty("tokens").GetInt32() <= 32));
        // The first chunk holds the unique topic; later ones may have been stored by another test's document.
        Assert.True(chunks[0].GetProperty("created").GetBoolean());
        Assert.Equal(chunks.Sum(c => c.GetProperty("tokens").GetInt32()), document.GetProperty("tokens").GetInt32());
    }

    [SkippableFact]
    public async Task Getting_a_document_returns_the_same_chunks()
    {
        using var client = server.Client();
        using var created = await client.PostAsync("/v1/documents", new { text = Document(Api.UniqueText("get")), chunk_tokens = 32 });
        var document = await created.ReadJsonAsync();
        var id = document.GetProperty("id").GetString()!;

        using var response = await client.GetAsync($"/v1/documents/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var found = await response.ReadJsonAsync();
        Assert.Equal(id, found.GetProperty("id").GetString());
        Assert.Equal(Ids(document), Ids(found));
    }

    [SkippableFact]
    public async Task Posting_the_same_document_again_gives_the_same_id_and_chunks_not_created_again()
    {
        using var client = server.Client();
        var body = new { text = Document(Api.UniqueText("again")), chunk_tokens = 32 };
        using var first = await client.PostAsync("/v1/documents", body);
        var firstDocument = await first.ReadJsonAsync();
        using var second = await client.PostAsync("/v1/documents", body);
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        var secondDocument = await second.ReadJsonAsync();
        Assert.Equal(firstDocument.GetProperty("id").GetString(), secondDocument.GetProperty("id").GetString());
        Assert.Equal(Ids(firstDocument), Ids(secondDocument));
        Assert.All(secondDocument.GetProperty("chunks").EnumerateArray(), c => Assert.False(c.GetProperty("created").GetBoolean()));
    }

    [SkippableFact]
    public async Task A_streamed_document_sends_progress_events_counting_up_to_the_total_and_then_the_document()
    {
        using var client = server.Client();
        using var response = await client.SendStreamingAsync("/v1/documents", new { text = Document(Api.UniqueText("stream")), chunk_tokens = 32, stream = true });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await Api.ReadEventsAsync(response);

        var progress = events.Where(e => e.Event == "progress").Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.True(progress.Count > 1);
        var total = progress[0].GetProperty("total").GetInt32();
        Assert.Equal(Enumerable.Range(1, total), progress.Select(p => p.GetProperty("done").GetInt32()));
        Assert.All(progress, p => Assert.Equal(total, p.GetProperty("total").GetInt32()));
        Assert.InRange(progress[^1].GetProperty("computed").GetInt32(), 1, total);

        Assert.Equal("document", events[^1].Event);
        var document = JsonDocument.Parse(events[^1].Data).RootElement;
        Assert.Equal(total, document.GetProperty("chunks").GetArrayLength());
    }

    [SkippableFact]
    public async Task An_unknown_document_is_404()
    {
        using var client = server.Client();
        using var response = await client.GetAsync($"/v1/documents/{new string('b', 64)}");
        await Api.AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    [SkippableFact]
    public async Task An_empty_document_is_a_bad_request()
    {
        using var client = server.Client();
        using var response = await client.PostAsync("/v1/documents", new { text = "   " });
        await Api.AssertProblemAsync(response, HttpStatusCode.BadRequest);
    }

    private static List<string?> Ids(JsonElement document) =>
        document.GetProperty("chunks").EnumerateArray().Select(c => c.GetProperty("id").GetString()).ToList();
}
