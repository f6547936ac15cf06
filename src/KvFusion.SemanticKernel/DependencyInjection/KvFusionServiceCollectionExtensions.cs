using KvFusion.Client;
using KvFusion.SemanticKernel.Chat;
using KvFusion.SemanticKernel.Embeddings;
using KvFusion.SemanticKernel.Hosting;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.VectorData;

// The container's own namespace, as every Add* extension: registrations read the same with or without KvFusion usings.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers KvFusion's chat clients, embedding generator and chunk vector store.</summary>
public static class KvFusionServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IChatClient"/> as a <see cref="KvFusionChatClient"/> on an in-process runtime (model, store of
    /// chunk caches, fusion engine) opened at first use; options are validated when the host starts.
    /// </summary>
    /// <returns>The builder of the client's pipeline, to add middleware such as <c>UseKvFusionRetrieval</c>.</returns>
    public static ChatClientBuilder AddKvFusionChatClient(this IServiceCollection services, Action<KvFusionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        AddOptions(services, Options.Options.DefaultName, configure);
        services.TryAddSingleton(sp => OpenRuntime(sp, Options.Options.DefaultName));
        return services.AddChatClient(sp => CreateClient(sp, sp.GetRequiredService<KvFusionRuntime>(), Options.Options.DefaultName));
    }

    /// <summary>
    /// Registers a keyed <see cref="IChatClient"/> on its own runtime, configured by the options named
    /// <paramref name="serviceKey"/>'s string form, so several models can serve one application.
    /// </summary>
    /// <returns>The builder of the client's pipeline.</returns>
    public static ChatClientBuilder AddKeyedKvFusionChatClient(this IServiceCollection services, object serviceKey, Action<KvFusionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(serviceKey);
        var name = NameOf(serviceKey);
        AddOptions(services, name, configure);
        services.TryAddKeyedSingleton(serviceKey, (sp, _) => OpenRuntime(sp, name));
        return services.AddKeyedChatClient(serviceKey, sp => CreateClient(sp, sp.GetRequiredKeyedService<KvFusionRuntime>(serviceKey), name));
    }

    /// <summary>Registers <see cref="IChatClient"/> as a <see cref="KvFusionServiceChatClient"/> talking to the KvFusion service at <paramref name="endpoint"/>.</summary>
    /// <returns>The builder of the client's pipeline.</returns>
    public static ChatClientBuilder AddKvFusionServiceChatClient(this IServiceCollection services, Uri endpoint, string? apiKey = null, Action<KvFusionChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!endpoint.IsAbsoluteUri)
        {
            throw new ArgumentException($"The service endpoint '{endpoint}' must be an absolute URI.", nameof(endpoint));
        }

        var options = new KvFusionChatClientOptions();
        configure?.Invoke(options);
        options.Validate();
        services.TryAddSingleton(_ => new KvFusionClient(new KvFusionClientOptions { BaseAddress = endpoint, ApiKey = apiKey }));
        return services.AddChatClient(sp => new KvFusionServiceChatClient(
            sp.GetRequiredService<KvFusionClient>(), options, sp.GetService<ILogger<KvFusionServiceChatClient>>()));
    }

    /// <summary>Registers the MiniLM <see cref="KvFusionEmbeddingGenerator"/> as <c>IEmbeddingGenerator&lt;string, Embedding&lt;float&gt;&gt;</c>.</summary>
    /// <returns>The builder of the generator's pipeline.</returns>
    public static EmbeddingGeneratorBuilder<string, Embedding<float>> AddKvFusionEmbeddingGenerator(this IServiceCollection services, Action<KvFusionEmbeddingGeneratorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new KvFusionEmbeddingGeneratorOptions();
        configure?.Invoke(options);
        options.Validate();
        return services.AddEmbeddingGenerator(_ => new KvFusionEmbeddingGenerator(options));
    }

    /// <summary>
    /// Registers the chunk <see cref="VectorStore"/> persisted in <paramref name="directory"/> (default
    /// <c>./data/vectors</c>, beside the default store of chunk caches); a registered embedding generator embeds text
    /// searches.
    /// </summary>
    public static IServiceCollection AddKvFusionVectorStore(this IServiceCollection services, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (directory is not null && string.IsNullOrWhiteSpace(directory))
        {
            throw new ArgumentException("The vector store directory must not be blank.", nameof(directory));
        }

        var path = directory ?? ChunkVectorStore.DefaultPathFor("data");
        services.TryAddSingleton(sp => ChunkVectorStore.OpenAsync(path, new ChunkVectorStoreOptions
        {
            EmbeddingGenerator = sp.GetService<IEmbeddingGenerator<string, Embedding<float>>>(),
            LoggerFactory = sp.GetService<ILoggerFactory>(),
        }).GetAwaiter().GetResult());
        services.TryAddSingleton<VectorStore>(sp => sp.GetRequiredService<ChunkVectorStore>());
        return services;
    }

    private static void AddOptions(IServiceCollection services, string name, Action<KvFusionOptions>? configure)
    {
        var builder = services.AddOptions<KvFusionOptions>(name);
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        builder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KvFusionOptions>, KvFusionOptionsValidator>());
    }

    private static KvFusionRuntime OpenRuntime(IServiceProvider services, string name)
    {
        var options = services.GetRequiredService<IOptionsMonitor<KvFusionOptions>>().Get(name);
        return KvFusionRuntime.OpenAsync(options, services.GetService<ILoggerFactory>()).GetAwaiter().GetResult();
    }

    private static KvFusionChatClient CreateClient(IServiceProvider services, KvFusionRuntime runtime, string name)
    {
        var options = services.GetRequiredService<IOptionsMonitor<KvFusionOptions>>().Get(name);
        return new KvFusionChatClient(runtime.Engine, options.ToChatClientOptions(), services.GetService<ILogger<KvFusionChatClient>>());
    }

    private static string NameOf(object key) => key as string ?? key.ToString() ?? throw new ArgumentException("The service key has no string form.", nameof(key));
}
