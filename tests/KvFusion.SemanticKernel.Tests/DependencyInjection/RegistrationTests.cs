using KvFusion.Cache.Fusion;
using KvFusion.SemanticKernel.Chat;
using KvFusion.SemanticKernel.Embeddings;
using KvFusion.SemanticKernel.Hosting;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

namespace KvFusion.SemanticKernel.Tests.DependencyInjection;

/// <summary>The registration extensions with a real <see cref="ServiceCollection"/> and a real Semantic Kernel.</summary>
public sealed class RegistrationTests : IDisposable
{
    private const string Question = "How do I serialize a Python object to JSON text?";
    private const string JsonChunk = "The json module encodes Python objects as JSON text with json.dumps and decodes JSON text with json.loads.";

    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    [SkippableFact]
    public async Task Chat_client_registration_resolves_a_kvfusion_client_that_answers_and_keeps_its_store_across_providers()
    {
        SkipWithoutModel();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 4 };
        List<ChatMessage> chat = [KvFusion.SemanticKernel.Retrieval.KvFusionContent.RetrievedContext([(JsonChunk, null)]), new(ChatRole.User, Question)];

        KvFusionReport first;
        await using (var provider = Services().BuildServiceProvider())
        {
            var client = provider.GetRequiredService<IChatClient>();
            Assert.Equal("kvfusion", client.GetService<ChatClientMetadata>()!.ProviderName);
            Assert.IsType<KvFusionChatClient>(client.GetService<KvFusionChatClient>());
            var response = await client.GetResponseAsync(chat, options);
            Assert.False(string.IsNullOrEmpty(response.Text));
            first = Report(response.Messages[^1].AdditionalProperties);
        }

        await using var reopened = Services().BuildServiceProvider();
        var again = await reopened.GetRequiredService<IChatClient>().GetResponseAsync(chat, options);

        Assert.Equal(1, first.ChunksPrecomputed);
        Assert.Equal(0, Report(again.Messages[^1].AdditionalProperties).ChunksPrecomputed);
        Assert.Equal(first.ChunkIds, Report(again.Messages[^1].AdditionalProperties).ChunkIds);
    }

    [SkippableFact]
    public async Task Options_are_validated_at_start_naming_the_bad_setting()
    {
        SkipWithoutModel();
        var services = Services(o =>
        {
            o.RecomputeRatio = 2;
            o.Threads = 0;
        });
        await using var provider = services.BuildServiceProvider();

        var atStart = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("RecomputeRatio", atStart.Message, StringComparison.Ordinal);
        Assert.Contains("Threads", atStart.Message, StringComparison.Ordinal);
        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IChatClient>());
    }

    [Fact]
    public async Task A_model_option_that_is_not_a_model_directory_is_refused()
    {
        var services = new ServiceCollection();
        services.AddKvFusionChatClient(o => o.Model = _data.Path);
        await using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("KvFusion:Model", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Keyed_clients_run_on_their_own_runtimes_with_their_own_settings()
    {
        SkipWithoutModel();
        var services = new ServiceCollection();
        services.AddKeyedKvFusionChatClient("full", o => Configure(o, "full-store", FusionMode.Full));
        services.AddKeyedKvFusionChatClient("blend", o => Configure(o, "blend-store", FusionMode.Blend));
        await using var provider = services.BuildServiceProvider();

        var full = provider.GetRequiredKeyedService<IChatClient>("full");
        var blend = provider.GetRequiredKeyedService<IChatClient>("blend");
        var chat = new List<ChatMessage> { KvFusion.SemanticKernel.Retrieval.KvFusionContent.RetrievedContext([(JsonChunk, null)]), new(ChatRole.User, Question) };
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 2 };

        Assert.Equal("full", Report((await full.GetResponseAsync(chat, options)).AdditionalProperties).Mode);
        Assert.StartsWith("blend", Report((await blend.GetResponseAsync(chat, options)).AdditionalProperties).Mode, StringComparison.Ordinal);
        Assert.NotSame(provider.GetRequiredKeyedService<KvFusionRuntime>("full"), provider.GetRequiredKeyedService<KvFusionRuntime>("blend"));
        Assert.Null(provider.GetService<IChatClient>());
    }

    [SkippableFact]
    public async Task Kernel_chat_completion_with_retrieval_middleware_fuses_the_stored_chunks_the_vector_store_returns()
    {
        SkipWithoutModel();
        var builder = Kernel.CreateBuilder();
        builder.Services.AddKvFusionEmbeddingGenerator();
        builder.Services.AddKvFusionVectorStore(_data.Combine("vectors"));
        builder.AddKvFusionChatCompletion(o => Configure(o, "kv", FusionMode.Blend), p => p.UseKvFusionRetrieval("pydocs", new() { Top = 1 }));
        var kernel = builder.Build();

        var runtime = kernel.Services.GetRequiredService<KvFusionRuntime>();
        var id = await runtime.Engine.PutChunkAsync(ChunkInput.FromText(JsonChunk));
        var embeddings = kernel.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var collection = kernel.GetRequiredService<VectorStore>().GetCollection<string, ChunkRecord>("pydocs");
        await collection.EnsureCollectionExistsAsync();
        await collection.UpsertAsync(new ChunkRecord { Id = id.ToString(), Document = "json", Text = JsonChunk, Embedding = (await embeddings.GenerateAsync(JsonChunk)).Vector });

        var history = new ChatHistory();
        history.AddUserMessage(Question);
        var settings = new PromptExecutionSettings { ExtensionData = new Dictionary<string, object> { ["max_tokens"] = 4, ["temperature"] = 0 } };
        var answer = await kernel.GetRequiredService<IChatCompletionService>().GetChatMessageContentAsync(history, settings, kernel);

        var report = Report(answer.Metadata);
        Assert.Equal([id.ToString()], report.ChunkIds);
        Assert.Equal(0, report.ChunksPrecomputed);
        Assert.True(report.ReusedTokens > 0);
        Assert.IsType<KvFusionEmbeddingGenerator>(embeddings.GetService<KvFusionEmbeddingGenerator>());
        Assert.IsType<ChunkVectorStore>(kernel.GetRequiredService<VectorStore>());
    }

    [SkippableFact]
    public void Kernel_chat_client_registration_with_a_service_id_is_keyed()
    {
        SkipWithoutModel();
        var builder = Kernel.CreateBuilder();
        builder.AddKvFusionChatClient(o => Configure(o, "kv", FusionMode.Blend), serviceId: "local");
        builder.AddKvFusionChatCompletion(o => Configure(o, "kv2", FusionMode.Reuse), serviceId: "reuse");
        var kernel = builder.Build();

        Assert.NotNull(kernel.Services.GetRequiredKeyedService<IChatClient>("local").GetService<KvFusionChatClient>());
        Assert.NotNull(kernel.GetRequiredService<IChatCompletionService>("reuse"));
        Assert.Null(kernel.Services.GetService<IChatClient>());
    }

    [Fact]
    public async Task Service_chat_client_registration_needs_an_absolute_endpoint_and_resolves_the_rest_client()
    {
        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddKvFusionServiceChatClient(new Uri("/v1", UriKind.Relative)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ServiceCollection().AddKvFusionServiceChatClient(new Uri("http://127.0.0.1:1"), configure: o => o.RecomputeRatio = 0));

        var services = new ServiceCollection();
        services.AddKvFusionServiceChatClient(new Uri("http://127.0.0.1:1"), "key");
        await using var provider = services.BuildServiceProvider();
        Assert.NotNull(provider.GetRequiredService<IChatClient>().GetService<KvFusionServiceChatClient>());
    }

    [Fact]
    public async Task Embedding_generator_registration_gives_minilm_vectors_and_refuses_bad_options()
    {
        Assert.ThrowsAny<ArgumentException>(() => new ServiceCollection().AddKvFusionEmbeddingGenerator(o => o.BatchSize = 0));

        var services = new ServiceCollection();
        services.AddKvFusionEmbeddingGenerator();
        await using var provider = services.BuildServiceProvider();
        var vector = await provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>().GenerateVectorAsync("json");
        Assert.Equal(KvFusionEmbeddingGenerator.Dimensions, vector.Length);
    }

    private static void SkipWithoutModel() => Skip.IfNot(SharedData.IsPresent, "../shared (models) is not present beside the checkout");

    private static KvFusionReport Report(IReadOnlyDictionary<string, object?>? properties) =>
        Assert.IsType<KvFusionReport>(Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(properties)[KvFusionReport.PropertyName]);

    private ServiceCollection Services(Action<KvFusionOptions>? more = null)
    {
        var services = new ServiceCollection();
        services.AddKvFusionChatClient(o =>
        {
            Configure(o, "kv", FusionMode.Blend);
            more?.Invoke(o);
        });
        return services;
    }

    private void Configure(KvFusionOptions options, string store, FusionMode mode)
    {
        options.Model = SharedModels.Path("tiny-pydocs");
        options.Storage.RocksDb = options.Storage.RocksDb with { Path = _data.Combine(store) };
        options.Threads = 1;
        options.Mode = mode;
    }
}
