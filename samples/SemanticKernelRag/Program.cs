// A Semantic Kernel RAG program, written as any SK program is: a kernel, an embedding generator, a vector store, a
// chat completion service with a retrieval step in its pipeline, and questions asked through IChatCompletionService.
// The only KvFusion-specific lines are the three registrations marked "KvFusion:" below. Swap them for another
// provider's and the program still runs; with them, every retrieved paragraph's KV cache is computed once, stored, and
// fused into later prompts (CacheBlend) instead of being prefilled again.
//
//   dotnet run -c Release --project samples/SemanticKernelRag -- [--model DIR] [--store DIR] [--corpus PATH]
//       [--questions N] [--top K] [--max-tokens N] [--short]
//
// --short asks 2 questions with 16 tokens each (what the tests run). The store (default ./data) keeps the chunk
// caches and the paragraphs' vectors (./data/vectors): a second run embeds nothing and precomputes no chunk.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvFusion.Cache.Evaluation;
using KvFusion.Diagnostics.Rag;
using KvFusion.Engine.Errors;
using KvFusion.Storage.RocksDb;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Text;

const string Collection = "pydocs";

string? model = null;
string? corpus = null;
var store = RocksDbTierOptions.DefaultPath;
var questions = RagDemoSet.Questions.Count;
var top = 3;
var maxTokens = 32;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        switch (args[i])
        {
            case "--model": model = Value(args, ref i); break;
            case "--store": store = Value(args, ref i); break;
            case "--corpus": corpus = Value(args, ref i); break;
            case "--questions": questions = Number(args, ref i); break;
            case "--top": top = Number(args, ref i); break;
            case "--max-tokens": maxTokens = Number(args, ref i); break;
            case "--short":
                questions = 2;
                maxTokens = 16;
                break;
            default: throw new ArgumentException($"Unknown argument '{args[i]}'. Options: --model --store --corpus --questions --top --max-tokens --short.");
        }
    }

    if (questions < 1 || questions > RagDemoSet.Questions.Count)
    {
        throw new ArgumentException($"--questions must be from 1 to {RagDemoSet.Questions.Count}, got {questions}.");
    }

    if (maxTokens < 1)
    {
        throw new ArgumentException($"--max-tokens must be at least 1, got {maxTokens}.");
    }

    var builder = Kernel.CreateBuilder();
    // KvFusion: MiniLM embeddings, offline.
    builder.Services.AddKvFusionEmbeddingGenerator();
    // KvFusion: a vector store persisted beside the chunk caches.
    builder.Services.AddKvFusionVectorStore(Path.Combine(store, "vectors"));
    // KvFusion: the chat completion service, with retrieval from the collection in its pipeline.
    builder.AddKvFusionChatCompletion(
        o =>
        {
            o.Model = model;
            o.Storage.RocksDb = o.Storage.RocksDb with { Path = store };
        },
        pipeline => pipeline.UseKvFusionRetrieval<string, DocsParagraph>(Collection, p => (p.Text, null), new() { Top = top }));
    var kernel = builder.Build();

    var embeddings = kernel.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
    var paragraphs = kernel.GetRequiredService<VectorStore>().GetCollection<string, DocsParagraph>(Collection);
    await IngestAsync(corpus, embeddings, paragraphs);

    var chat = kernel.GetRequiredService<IChatCompletionService>();
    var settings = new PromptExecutionSettings
    {
        ExtensionData = new Dictionary<string, object> { ["max_tokens"] = maxTokens, ["temperature"] = 0 },
    };
    var ttfts = new List<double>(questions);
    foreach (var question in RagDemoSet.Questions.Take(questions))
    {
        var history = new ChatHistory("Answer the question from the Python documentation you are given.");
        history.AddUserMessage(question.Text);

        var answer = new StringBuilder();
        IReadOnlyDictionary<string, object?>? metadata = null;
        double? ttft = null;
        var clock = Stopwatch.StartNew();
        await foreach (var update in chat.GetStreamingChatMessageContentsAsync(history, settings, kernel))
        {
            ttft ??= clock.Elapsed.TotalMilliseconds;
            answer.Append(update.Content);
            metadata = update.Metadata ?? metadata;
        }

        ttfts.Add(ttft ?? clock.Elapsed.TotalMilliseconds);
        Console.WriteLine($"Q: {question.Text}");
        Console.WriteLine($"A: {answer.ToString().ReplaceLineEndings(" ").Trim()}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   time to first token {ttfts[^1]:0.0} ms"));
        foreach (var (key, value) in metadata ?? new Dictionary<string, object?>())
        {
            Console.WriteLine(value is UsageContent usage ? $"   {key}: {Describe(usage.Details)}" : $"   {key}: {value}");
        }

        Console.WriteLine();
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Done: {ttfts.Count} questions, mean time to first token {ttfts.Average():0.0} ms."));
    return 0;
}
catch (Exception e) when (e is ArgumentException or KvFusionException or FileNotFoundException or IOException or Microsoft.Extensions.Options.OptionsValidationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

// The documents: the demo's ten pages of the Python docs, split into paragraphs with SK's TextChunker, embedded and
// stored once. (The shared corpus is a .tar.xz, which .NET cannot read, hence KvFusion's reader; any loader works.)
static async Task IngestAsync(string? corpus, IEmbeddingGenerator<string, Embedding<float>> embeddings, VectorStoreCollection<string, DocsParagraph> paragraphs)
{
    var path = RagDemoSet.FindCorpus(corpus);
    var byPath = new Dictionary<string, string>(StringComparer.Ordinal);
    foreach (var document in new CorpusReader(path).ReadAll())
    {
        byPath[document.Path] = document.Text;
    }

    var all = new List<DocsParagraph>();
    foreach (var page in RagDemoSet.Pages)
    {
        if (!byPath.TryGetValue(page, out var text))
        {
            throw new FileNotFoundException($"The corpus {path} has no page {page}.", page);
        }

#pragma warning disable SKEXP0050 // TextChunker is SK's own paragraph splitter, still marked experimental.
        var split = TextChunker.SplitPlainTextParagraphs(TextChunker.SplitPlainTextLines(text, 40), 160);
#pragma warning restore SKEXP0050
        for (var k = 0; k < split.Count; k++)
        {
            all.Add(new DocsParagraph { Key = $"{page}#{k}", Page = page, Text = split[k] });
        }
    }

    await paragraphs.EnsureCollectionExistsAsync();
    var stored = new HashSet<string>(StringComparer.Ordinal);
    await foreach (var existing in paragraphs.GetAsync(all.Select(p => p.Key)))
    {
        stored.Add(existing.Key);
    }

    var missing = all.Where(p => !stored.Contains(p.Key)).ToList();
    foreach (var batch in missing.Chunk(16))
    {
        var vectors = await embeddings.GenerateAsync(batch.Select(p => p.Text));
        for (var k = 0; k < batch.Length; k++)
        {
            batch[k].Embedding = vectors[k].Vector;
        }

        await paragraphs.UpsertAsync(batch);
    }

    Console.WriteLine($"Ingest: {RagDemoSet.Pages.Count} pages, {all.Count} paragraphs: {missing.Count} embedded, {stored.Count} already stored.");
    Console.WriteLine();
}

// Usage as M.E.AI reports it: cached input tokens are the prompt tokens whose KV cache was reused, not prefilled.
static string Describe(UsageDetails usage) =>
    $"{usage.InputTokenCount} input tokens ({usage.CachedInputTokenCount} cached), {usage.OutputTokenCount} output tokens";

static string Value(string[] args, ref int i) =>
    i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");

static int Number(string[] args, ref int i)
{
    var name = args[i];
    var text = Value(args, ref i);
    return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
        ? n
        : throw new ArgumentException($"{name} takes a whole number, got '{text}'.");
}

/// <summary>A paragraph of the docs as this program stores it: its own key and fields, no KvFusion type.</summary>
internal sealed class DocsParagraph
{
    [VectorStoreKey]
    public string Key { get; set; } = string.Empty;

    [VectorStoreData(IsIndexed = true)]
    public string Page { get; set; } = string.Empty;

    [VectorStoreData]
    public string Text { get; set; } = string.Empty;

    [VectorStoreVector(384, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}
