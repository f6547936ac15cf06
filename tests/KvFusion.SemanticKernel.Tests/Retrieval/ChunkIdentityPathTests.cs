using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using KvFusion.SemanticKernel.Chat;
using KvFusion.SemanticKernel.Embeddings;
using KvFusion.SemanticKernel.Retrieval;
using KvFusion.SemanticKernel.Tests.Chat;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Data;

namespace KvFusion.SemanticKernel.Tests.Retrieval;

/// <summary>
/// Chunk identity from retrieval to fusion on each of the three paths (middleware, ChatHistory helper, context
/// formatter in SK's TextSearchProvider), through function-invocation middleware too: the fused chunks are exactly the
/// retrieved ones, read from the store, and none is prefilled twice.
/// </summary>
[Collection(ChatModelGroup.Name)]
public sealed class ChunkIdentityPathTests(CpuModelFixture models) : IAsyncLifetime, IDisposable
{
    private const string Question = "How do I serialize a Python object to JSON text?";

    private static readonly string[] Documents =
    [
        "The json module encodes Python objects as JSON text with json.dumps and decodes JSON text with json.loads.",
        "The os.path module joins, splits and normalizes file system paths on every platform.",
        "json.dump writes the JSON text of an object to a file opened for writing; indent makes it readable.",
        "The random module draws pseudo-random numbers; random.seed makes a sequence repeatable.",
        "A list keeps its items in order; list.sort sorts it in place and sorted returns a new list.",
    ];

    private static readonly ChatOptions Greedy = new() { Temperature = 0, MaxOutputTokens = 6 };

    private readonly KvFusionEmbeddingGenerator _embeddings = new();
    private ChunkVectorStore? _vectors;
    private VectorStoreCollection<string, ChunkRecord>? _collection;
    private CountingKvStore? _store;
    private FusionEngine? _engine;

    public async Task InitializeAsync()
    {
        if (!SharedData.IsPresent)
        {
            return;
        }

        _store = new CountingKvStore(new InMemoryKvStore());
        _engine = new FusionEngine(models.Tiny, _store);
        _vectors = ChunkVectorStore.InMemory(new ChunkVectorStoreOptions { EmbeddingGenerator = _embeddings });
        _collection = _vectors.GetCollection<string, ChunkRecord>("pydocs");
        await _collection.EnsureCollectionExistsAsync();
        for (var i = 0; i < Documents.Length; i++)
        {
            var id = await _engine.PutChunkAsync(ChunkInput.FromText(Documents[i]));
            var embedding = await _embeddings.GenerateAsync(Documents[i]);
            await _collection.UpsertAsync(new ChunkRecord { Id = id.ToString(), Document = $"doc{i}", Text = Documents[i], Embedding = embedding.Vector });
        }

        _store.Reset();
    }

    // Dispose frees everything; nothing asynchronous is left to do.
    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _engine?.Dispose();
        _vectors?.Dispose();
        _embeddings.Dispose();
    }

    [SkippableFact]
    public async Task Middleware_fuses_exactly_the_retrieved_chunks_from_the_store_and_prefills_none_twice()
    {
        SkipWithoutModel();
        var expected = await SearchAsync(2);
        using var client = new ChatClientBuilder(new KvFusionChatClient(_engine!))
            .UseKvFusionRetrieval(_collection!, new KvFusionRetrievalOptions { Top = 2 })
            .Build();

        var first = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Question)], Greedy);
        var second = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Question)], Greedy);

        Assert.Equal<string?>(expected, Assert.IsAssignableFrom<IReadOnlyList<string?>>(first.AdditionalProperties![KvFusionRetrievalChatClient.RetrievedChunkIdsProperty]));
        Assert.Equal(expected, ReportOf(first.AdditionalProperties).ChunkIds);
        Assert.Equal(expected, ReportOf(second.AdditionalProperties).ChunkIds);
        AssertReadNeverWritten(expected, timesAsked: 2);
        Assert.Equal(0, ReportOf(second.AdditionalProperties).ChunksPrecomputed);
    }

    [SkippableFact]
    public async Task Middleware_streams_with_the_same_chunks()
    {
        SkipWithoutModel();
        var expected = await SearchAsync(3);
        using var client = new ChatClientBuilder(new KvFusionChatClient(_engine!))
            .UseKvFusionRetrieval(_collection!, new KvFusionRetrievalOptions { Top = 3 })
            .Build();

        var gathered = await client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Question)], Greedy).ToChatResponseAsync();

        Assert.Equal(expected, ReportOf(gathered.Messages[^1].AdditionalProperties).ChunkIds);
        AssertReadNeverWritten(expected, timesAsked: 1);
    }

    [SkippableFact]
    public async Task ChatHistory_helper_through_the_kernels_chat_completion_service_fuses_the_records_it_was_given()
    {
        SkipWithoutModel();
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton<IChatClient>(new KvFusionChatClient(_engine!, new KvFusionChatClientOptions { DefaultMaxOutputTokens = 6 }));
        builder.Services.AddSingleton<IChatCompletionService>(sp => sp.GetRequiredService<IChatClient>().AsChatCompletionService(sp));
        var kernel = builder.Build();
        var records = await RecordsAsync(2);

        var history = new ChatHistory("Answer from the context.");
        history.AddKvFusionContext(records);
        history.AddUserMessage(Question);
        var answer = await kernel.GetRequiredService<IChatCompletionService>().GetChatMessageContentAsync(history, kernel: kernel);
        var again = await kernel.GetRequiredService<IChatCompletionService>().GetChatMessageContentAsync(history, kernel: kernel);

        var ids = records.Select(r => r.Id).ToList();
        Assert.Equal(ids, ReportOf(answer.Metadata).ChunkIds);
        Assert.Equal(ids, ReportOf(again.Metadata).ChunkIds);
        AssertReadNeverWritten(ids, timesAsked: 2);
    }

    [SkippableFact]
    public async Task Context_formatter_markers_are_parsed_back_into_the_retrieved_chunk_ids()
    {
        SkipWithoutModel();
        var results = new List<TextSearchResult>();
        await foreach (var result in _collection!.SearchAsync(Question, 2))
        {
            results.Add(KvFusionContextFormatter.ToTextSearchResult(result.Record));
        }

        var context = KvFusionContextFormatter.Format(results);
        using var client = new KvFusionChatClient(_engine!);
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.System, context), new ChatMessage(ChatRole.User, Question)], Greedy);

        var ids = results.Select(r => r.Link!).ToList();
        Assert.Equal(2, KvFusionChunkMarkers.Split(context).Count(s => s.IsChunk));
        Assert.Equal(ids, ReportOf(response.AdditionalProperties).ChunkIds);
        AssertReadNeverWritten(ids, timesAsked: 1);
    }

    [SkippableFact]
    public async Task Context_formatter_in_SKs_own_TextSearchProvider_gives_instructions_the_client_fuses_as_the_searched_chunks()
    {
        SkipWithoutModel();
        var expected = await SearchAsync(2);
#pragma warning disable SKEXP0001, SKEXP0130 // SK marks its text search and TextSearchProvider experimental: the path apps keep.
        var search = new VectorStoreTextSearch<ChunkRecord>(_collection!, KvFusionContextFormatter.ToText, KvFusionContextFormatter.ToTextSearchResult);
        var provider = new TextSearchProvider(search, options: new TextSearchProviderOptions { Top = 2, ContextFormatter = KvFusionContextFormatter.Format });
        var context = await provider.ModelInvokingAsync([new ChatMessage(ChatRole.User, Question)]);
#pragma warning restore SKEXP0001, SKEXP0130
        using var client = new KvFusionChatClient(_engine!);

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.System, context.Instructions!), new ChatMessage(ChatRole.User, Question)], Greedy);

        Assert.Equal(expected, ReportOf(response.AdditionalProperties).ChunkIds);
        AssertReadNeverWritten(expected, timesAsked: 1);
    }

    [SkippableFact]
    public async Task Chunk_ids_survive_function_invocation_middleware_and_a_kernel_with_automatic_function_choice()
    {
        SkipWithoutModel();
        var expected = await SearchAsync(2);
        using var client = new ChatClientBuilder(new KvFusionChatClient(_engine!))
            .UseKvFusionRetrieval(_collection!, new KvFusionRetrievalOptions { Top = 2 })
            .UseFunctionInvocation()
            .Build();
        var withTools = new ChatOptions { Temperature = 0, MaxOutputTokens = 6, Tools = [AIFunctionFactory.Create(() => "sunny", "weather")] };

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Question)], withTools);

        Assert.Equal(expected, ReportOf(response.Messages[^1].AdditionalProperties).ChunkIds);

        // SK routes a kernel with plugins and automatic function choice through its own function-invoking client.
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton<IChatClient>(new KvFusionChatClient(_engine!, new KvFusionChatClientOptions { DefaultMaxOutputTokens = 6 }));
        builder.Services.AddSingleton<IChatCompletionService>(sp => sp.GetRequiredService<IChatClient>().AsChatCompletionService(sp));
        builder.Plugins.AddFromFunctions("weather", [KernelFunctionFactory.CreateFromMethod(() => "sunny", "today")]);
        var kernel = builder.Build();
        var history = new ChatHistory("Answer from the context.");
        history.AddKvFusionContext(await RecordsAsync(2));
        history.AddUserMessage(Question);
        var settings = new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };

        var answer = await kernel.GetRequiredService<IChatCompletionService>().GetChatMessageContentAsync(history, settings, kernel);

        Assert.Equal(expected, ReportOf(answer.Metadata).ChunkIds);
        AssertReadNeverWritten(expected, timesAsked: 2);
    }

    [SkippableFact]
    public async Task Text_retrieved_without_ids_is_precomputed_once_and_reused_on_the_next_question()
    {
        SkipWithoutModel();
        var fresh = "The pathlib module offers classes for file system paths with semantics for different operating systems.";
        using var client = new ChatClientBuilder(new KvFusionChatClient(_engine!))
            .UseKvFusionRetrieval<ChunkRecord>(_collection!, _ => (fresh, null), new KvFusionRetrievalOptions { Top = 1 })
            .Build();

        var first = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Question)], Greedy);
        var second = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Question)], Greedy);

        var id = Assert.Single(ReportOf(first.AdditionalProperties).ChunkIds);
        Assert.Equal([id], ReportOf(second.AdditionalProperties).ChunkIds);
        Assert.Equal(1, _store!.ChunkWrites[id]);
        Assert.Equal(1, ReportOf(first.AdditionalProperties).ChunksPrecomputed);
        Assert.Equal(0, ReportOf(second.AdditionalProperties).ChunksPrecomputed);
    }

    private static KvFusionReport ReportOf(IReadOnlyDictionary<string, object?>? properties) =>
        Assert.IsType<KvFusionReport>(Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(properties)[KvFusionReport.PropertyName]);

    private static void SkipWithoutModel() => Skip.IfNot(SharedData.IsPresent, "../shared (models) is not present beside the checkout");

    private async Task<List<string>> SearchAsync(int top) => [.. (await RecordsAsync(top)).Select(r => r.Id)];

    private async Task<List<ChunkRecord>> RecordsAsync(int top)
    {
        var records = new List<ChunkRecord>();
        await foreach (var result in _collection!.SearchAsync(Question, top))
        {
            records.Add(result.Record);
        }

        Assert.Equal(top, records.Count);
        return records;
    }

    /// <summary>Every fused chunk was read from the store once per question and none was written (prefilled) again.</summary>
    private void AssertReadNeverWritten(IReadOnlyList<string> ids, int timesAsked)
    {
        Assert.Empty(_store!.ChunkWrites);
        foreach (var id in ids)
        {
            Assert.Equal(timesAsked, _store.ChunkReads[id]);
        }
    }
}
