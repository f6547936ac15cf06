// Registers a document with a running `kvfusion serve`, then asks a question whose prompt is fused from the
// document's stored chunks: the answer, the time to first token and how many prompt tokens came from the store.
//
//   kvfusion serve                                   # in another terminal (http://127.0.0.1:8080)
//   dotnet run --project samples/RestClient -- [--url URL] [--file DOC.txt] [QUESTION]
//
// KVFUSION_API_KEY is sent as the bearer token when the service has API keys configured.
using System.Globalization;
using KvFusion.Client;
using KvFusion.Client.Contracts;

var url = new Uri("http://127.0.0.1:8080");
string? file = null;
var question = "What does sorted() return?";
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--url" when i + 1 < args.Length:
            url = new Uri(args[++i]);
            break;
        case "--file" when i + 1 < args.Length:
            file = args[++i];
            break;
        default:
            question = args[i];
            break;
    }
}

var text = file is null ? SampleDocument.Text : await File.ReadAllTextAsync(file);
using var client = new KvFusionClient(new KvFusionClientOptions
{
    BaseAddress = url,
    ApiKey = Environment.GetEnvironmentVariable("KVFUSION_API_KEY") is { Length: > 0 } key ? key : null,
});

try
{
    var ready = await client.GetReadinessAsync();
    Console.WriteLine($"Service at {client.BaseAddress}: {ready.Status}, model {ready.Model}");

    // Chunking and precomputing happen once; the progress shows chunks done (and how many needed computing).
    var document = await client.CreateDocumentAsync(
        new CreateDocumentRequest { Text = text, Name = file ?? "sample", ChunkTokens = 128 },
        new Progress<DocumentProgress>(p => Console.Write($"\rChunks: {p.Done}/{p.Total} ({p.Computed} computed)   ")));
    Console.WriteLine();
    Console.WriteLine($"Document {document.Id[..12]}…: {document.Chunks.Count} chunks, {document.Tokens} tokens");

    // Any later question reuses the stored chunks instead of prefilling the document again.
    var completion = await client.ChatCompletionAsync(new ChatCompletionRequest
    {
        Messages =
        [
            new ChatMessage { Role = "system", Content = "Answer from the documentation above." },
            new ChatMessage { Role = "user", Content = question },
        ],
        MaxTokens = 64,
        Temperature = 0,
        Kvfusion = new FusionOptions { Chunks = [.. document.Chunks.Select(c => c.Id)], Mode = "blend" },
    });

    Console.WriteLine();
    Console.WriteLine($"Q: {question}");
    Console.WriteLine($"A: {completion.Choices[0].Message.Content}");
    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"TTFT {completion.Kvfusion.TtftMs:0.0} ms; cached tokens {completion.Usage.PromptTokensDetails.CachedTokens} of {completion.Usage.PromptTokens} prompt tokens; mode {completion.Kvfusion.Mode}"));
    return 0;
}
catch (KvFusionApiException e)
{
    Console.Error.WriteLine($"The service answered {(int)e.StatusCode}: {e.Message}");
    return 1;
}
catch (HttpRequestException e)
{
    Console.Error.WriteLine($"Could not reach {url}: {e.Message} (is `kvfusion serve` running?)");
    return 1;
}

internal static class SampleDocument
{
    public const string Text = """
        sorted(iterable, /, *, key=None, reverse=False) returns a new sorted list from the items in iterable.
        The key argument specifies a function of one argument that is used to extract a comparison key from each element.
        The reverse argument is a boolean value; if set to True, the list elements are sorted as if each comparison were reversed.
        list.sort() sorts the list in place and returns None; it is stable, so items that compare equal keep their order.
        len(s) returns the length (the number of items) of an object: a sequence such as a string, bytes, tuple, list or range.
        dict.items() returns a new view of the dictionary's items, (key, value) pairs, which reflects later changes.
        """;
}
