using KvFusion.SemanticKernel.Retrieval;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.VectorData;

// The builder's own namespace, as M.E.AI's Use* extensions: a pipeline reads the same with or without KvFusion usings.
namespace Microsoft.Extensions.AI;

/// <summary>Adds <see cref="KvFusionRetrievalChatClient"/> to a chat client pipeline.</summary>
public static class KvFusionRetrievalChatClientBuilderExtensions
{
    /// <summary>Retrieves from <paramref name="source"/> and injects the top results, read by <paramref name="select"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (checked here, not at the first call).</exception>
    public static ChatClientBuilder UseKvFusionRetrieval<TRecord>(
        this ChatClientBuilder builder,
        IVectorSearchable<TRecord> source,
        Func<TRecord, (string Text, string? ChunkId)> select,
        KvFusionRetrievalOptions? options = null)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(select);
        var settings = (options ?? new KvFusionRetrievalOptions()).Snapshot();
        return builder.Use((inner, services) => Create(inner, services, source, select, settings));
    }

    /// <summary>Retrieves <see cref="ChunkRecord"/>s from <paramref name="source"/> and injects their text and ids.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatClientBuilder UseKvFusionRetrieval(this ChatClientBuilder builder, IVectorSearchable<ChunkRecord> source, KvFusionRetrievalOptions? options = null) =>
        builder.UseKvFusionRetrieval(source, KvFusionRetrievalChatClient.SelectChunk, options);

    /// <summary>
    /// Retrieves <see cref="ChunkRecord"/>s from the <see cref="IVectorSearchable{TRecord}"/> registered in the service
    /// provider (for example a collection registered with <c>AddSingleton</c>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatClientBuilder UseKvFusionRetrieval(this ChatClientBuilder builder, KvFusionRetrievalOptions? options = null) =>
        builder.UseKvFusionRetrieval<ChunkRecord>(KvFusionRetrievalChatClient.SelectChunk, options);

    /// <summary>Retrieves from the <see cref="IVectorSearchable{TRecord}"/> registered in the service provider.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatClientBuilder UseKvFusionRetrieval<TRecord>(this ChatClientBuilder builder, Func<TRecord, (string Text, string? ChunkId)> select, KvFusionRetrievalOptions? options = null)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(select);
        var settings = (options ?? new KvFusionRetrievalOptions()).Snapshot();
        return builder.Use((inner, services) => Create(inner, services, services.GetRequiredService<IVectorSearchable<TRecord>>(), select, settings));
    }

    /// <summary>
    /// Retrieves <see cref="ChunkRecord"/>s from the collection <paramref name="collectionName"/> (string keys) of the
    /// <see cref="VectorStore"/> registered in the service provider (for example by <c>AddKvFusionVectorStore</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatClientBuilder UseKvFusionRetrieval(this ChatClientBuilder builder, string collectionName, KvFusionRetrievalOptions? options = null) =>
        builder.UseKvFusionRetrieval<string, ChunkRecord>(collectionName, KvFusionRetrievalChatClient.SelectChunk, options);

    /// <summary>Retrieves from the collection <paramref name="collectionName"/> of the registered <see cref="VectorStore"/>.</summary>
    /// <exception cref="ArgumentException">The name is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static ChatClientBuilder UseKvFusionRetrieval<TKey, TRecord>(
        this ChatClientBuilder builder, string collectionName, Func<TRecord, (string Text, string? ChunkId)> select, KvFusionRetrievalOptions? options = null)
        where TKey : notnull
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(collectionName);
        ArgumentNullException.ThrowIfNull(select);
        var settings = (options ?? new KvFusionRetrievalOptions()).Snapshot();
        return builder.Use((inner, services) =>
            Create(inner, services, services.GetRequiredService<VectorStore>().GetCollection<TKey, TRecord>(collectionName), select, settings));
    }

    private static KvFusionRetrievalChatClient Create<TRecord>(
        IChatClient inner, IServiceProvider services, IVectorSearchable<TRecord> source, Func<TRecord, (string Text, string? ChunkId)> select, KvFusionRetrievalOptions settings)
        where TRecord : class
    {
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger<KvFusionRetrievalChatClient>();
        return KvFusionRetrievalChatClient.Create(inner, source, select, settings, logger);
    }
}
