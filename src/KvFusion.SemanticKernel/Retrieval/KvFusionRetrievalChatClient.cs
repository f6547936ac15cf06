using System.Runtime.CompilerServices;
using KvFusion.SemanticKernel.VectorStores;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.Retrieval;

/// <summary>
/// Chat middleware that retrieves chunks for the last user message and injects them, as a retrieved-context message
/// (<see cref="KvFusionContent.RetrievedContext"/>), right before that message. A KvFusion chat client underneath fuses the
/// chunks' stored caches; any other client reads the message as plain text.
/// </summary>
/// <remarks>
/// Nothing is retrieved when the chat has no user message with text, or when the current turn (the messages after the last
/// assistant message before the question) already holds a retrieved-context message, so the context is injected once. The
/// caller's message list is never changed: the inner client gets a copy. The response (and the first streaming update)
/// carries the injected chunks' ids under <see cref="RetrievedChunkIdsProperty"/>.
/// </remarks>
public sealed class KvFusionRetrievalChatClient : DelegatingChatClient
{
    /// <summary>
    /// The additional-properties key, on the response and the first streaming update, of the injected chunks' ids
    /// (<c>IReadOnlyList&lt;string?&gt;</c>, in order; null for a chunk retrieved without id). Absent when nothing was injected.
    /// </summary>
    public const string RetrievedChunkIdsProperty = "kvfusion.retrieved_chunk_ids";

    private readonly KvFusionChunkRetriever _retriever;
    private readonly ILogger _logger;

    /// <summary>Middleware over <paramref name="innerClient"/> that injects what <paramref name="retriever"/> finds.</summary>
    public KvFusionRetrievalChatClient(IChatClient innerClient, KvFusionChunkRetriever retriever, ILogger<KvFusionRetrievalChatClient>? logger = null)
        : base(innerClient)
    {
        ArgumentNullException.ThrowIfNull(retriever);
        _retriever = retriever;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>
    /// Middleware that searches <paramref name="source"/> with the question's text (the source embeds it) and injects the
    /// top results, best first, as <paramref name="select"/> reads them.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="KvFusionRetrievalOptions.Validate"/>).</exception>
    public static KvFusionRetrievalChatClient Create<TRecord>(
        IChatClient innerClient,
        IVectorSearchable<TRecord> source,
        Func<TRecord, (string Text, string? ChunkId)> select,
        KvFusionRetrievalOptions? options = null,
        ILogger<KvFusionRetrievalChatClient>? logger = null)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(innerClient);
        return new KvFusionRetrievalChatClient(innerClient, SearchRetriever(source, select, options, logger), logger);
    }

    /// <summary>Middleware that searches a collection of <see cref="ChunkRecord"/>s (their text and id are injected).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="KvFusionRetrievalOptions.Validate"/>).</exception>
    public static KvFusionRetrievalChatClient Create(
        IChatClient innerClient,
        IVectorSearchable<ChunkRecord> source,
        KvFusionRetrievalOptions? options = null,
        ILogger<KvFusionRetrievalChatClient>? logger = null) => Create(innerClient, source, SelectChunk, options, logger);

    /// <summary>A <see cref="ChunkRecord"/>'s text and id (none when the record has no id).</summary>
    internal static (string Text, string? ChunkId) SelectChunk(ChunkRecord record) =>
        (record.Text, string.IsNullOrEmpty(record.Id) ? null : record.Id);

    /// <summary>The retriever that searches <paramref name="source"/> and keeps what the options allow.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    internal static KvFusionChunkRetriever SearchRetriever<TRecord>(
        IVectorSearchable<TRecord> source, Func<TRecord, (string Text, string? ChunkId)> select, KvFusionRetrievalOptions? options, ILogger? logger)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(select);
        var settings = (options ?? new KvFusionRetrievalOptions()).Snapshot();
        var log = logger ?? NullLogger.Instance;
        return async (question, ct) =>
        {
            var found = new List<(string Text, string? ChunkId)>(settings.Top);
            await foreach (var result in source.SearchAsync(question, settings.Top, cancellationToken: ct).ConfigureAwait(false))
            {
                if (settings.MinScore is { } min && result.Score is { } score && score < min)
                {
                    continue;
                }

                var chunk = select(result.Record);
                if (string.IsNullOrEmpty(chunk.Text))
                {
                    // A record without text has nothing for the model to read; injecting it would only fail the call.
                    log.LogWarning("A retrieved record (id {ChunkId}) has no text; it is left out of the context", chunk.ChunkId);
                    continue;
                }

                found.Add(chunk);
            }

            return found;
        };
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A retrieved chunk id is not 64 hex characters.</exception>
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (prompt, ids) = await AugmentAsync(messages, cancellationToken).ConfigureAwait(false);
        var response = await base.GetResponseAsync(prompt, options, cancellationToken).ConfigureAwait(false);
        if (ids is not null)
        {
            (response.AdditionalProperties ??= [])[RetrievedChunkIdsProperty] = ids;
        }

        return response;
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A retrieved chunk id is not 64 hex characters.</exception>
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (prompt, ids) = await AugmentAsync(messages, cancellationToken).ConfigureAwait(false);
        var first = true;
        await foreach (var update in base.GetStreamingResponseAsync(prompt, options, cancellationToken).ConfigureAwait(false))
        {
            if (first && ids is not null)
            {
                (update.AdditionalProperties ??= [])[RetrievedChunkIdsProperty] = ids;
            }

            first = false;
            yield return update;
        }
    }

    /// <summary>The messages with the retrieved context before the question, and the injected ids (null when none).</summary>
    private async Task<(IEnumerable<ChatMessage> Prompt, IReadOnlyList<string?>? Ids)> AugmentAsync(IEnumerable<ChatMessage> messages, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var question = IndexOfQuestion(list);
        if (question < 0)
        {
            _logger.LogDebug("No user message with text; nothing is retrieved");
            return (list, null);
        }

        if (HasContext(list, question))
        {
            _logger.LogDebug("The question already has retrieved context; nothing more is retrieved");
            return (list, null);
        }

        var chunks = await _retriever(list[question].Text, ct).ConfigureAwait(false);
        if (chunks is null || chunks.Count == 0)
        {
            _logger.LogDebug("Retrieval found nothing for the question");
            return (list, null);
        }

        var context = KvFusionContent.RetrievedContext(chunks);
        var prompt = new List<ChatMessage>(list.Count + 1);
        for (var i = 0; i < list.Count; i++)
        {
            if (i == question)
            {
                prompt.Add(context);
            }

            prompt.Add(list[i]);
        }

        var ids = new string?[chunks.Count];
        for (var i = 0; i < chunks.Count; i++)
        {
            ids[i] = chunks[i].ChunkId?.ToLowerInvariant();
        }

        _logger.LogDebug("Injected {Count} retrieved chunks before the question", chunks.Count);
        return (prompt, ids);
    }

    /// <summary>The index of the last user message that has text and is not itself retrieved context; -1 when none.</summary>
    private static int IndexOfQuestion(IReadOnlyList<ChatMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            var message = messages[i];
            if (message is not null && message.Role == ChatRole.User && !KvFusionContent.IsRetrievedContext(message) && !string.IsNullOrWhiteSpace(message.Text))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Whether a retrieved-context message sits in the question's turn (after the assistant's last answer before it).</summary>
    private static bool HasContext(IReadOnlyList<ChatMessage> messages, int question)
    {
        for (var i = question - 1; i >= 0; i--)
        {
            var message = messages[i];
            if (message is null)
            {
                continue;
            }

            if (KvFusionContent.IsRetrievedContext(message))
            {
                return true;
            }

            if (message.Role == ChatRole.Assistant)
            {
                return false;
            }
        }

        return false;
    }
}
