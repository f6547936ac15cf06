using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Prompts;
using KvFusion.Client;
using KvFusion.Client.Contracts;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ServiceChatMessage = KvFusion.Client.Contracts.ChatMessage;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>
/// <see cref="IChatClient"/> on the KvFusion service (<c>/v1/chat/completions</c> through <see cref="KvFusionClient"/>).
/// Chunks travel as ids in the request's <c>kvfusion.chunks</c>; a chunk given without id, or one the service does not
/// hold (it answers 404), is created from its text with <c>POST /v1/chunks</c> first.
/// </summary>
/// <remarks>
/// Chunks are read as <see cref="KvFusionChatClient"/> reads them and placed the same way: after the system text, in order.
/// Errors of the service surface as <see cref="KvFusionApiException"/> with its status. <see cref="ChatOptions.TopK"/> is
/// refused (the service has no top-k); tools are ignored. The <see cref="KvFusionClient"/> is not owned.
/// </remarks>
public sealed class KvFusionServiceChatClient : IChatClient
{
    private readonly KvFusionClient _client;
    private readonly KvFusionChatClientOptions _options;
    private readonly ILogger _logger;
    private readonly ChatClientMetadata _metadata;

    /// <summary>A client on the service <paramref name="client"/> talks to.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="KvFusionChatClientOptions.Validate"/>).</exception>
    public KvFusionServiceChatClient(KvFusionClient client, KvFusionChatClientOptions? options = null, ILogger<KvFusionServiceChatClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _options = (options ?? new KvFusionChatClientOptions()).Snapshot();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metadata = new ChatClientMetadata(ChatResponses.ProviderName, client.BaseAddress, _options.ModelId);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No user message, an unknown role or mode, a malformed chunk id, or an option out of range.</exception>
    /// <exception cref="KvFusionApiException">The service refused the call (its status and problem details).</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options);
        await CreateUnnamedChunksAsync(call, cancellationToken).ConfigureAwait(false);
        ChatCompletion completion;
        try
        {
            completion = await _client.ChatCompletionAsync(call.Request(), cancellationToken).ConfigureAwait(false);
        }
        catch (KvFusionApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            if (!await CreateMissingChunksAsync(call, cancellationToken).ConfigureAwait(false))
            {
                throw;
            }

            completion = await _client.ChatCompletionAsync(call.Request(), cancellationToken).ConfigureAwait(false);
        }

        var choice = completion.Choices.Count > 0 ? completion.Choices[0] : throw new InvalidDataException("The service answered a chat completion without a choice.");
        var report = Report(call, completion.Kvfusion, completion.Usage);
        var created = DateTimeOffset.FromUnixTimeSeconds(completion.Created);
        return ChatResponses.Response(choice.Message.Content ?? "", FinishOf(choice.FinishReason), report, completion, completion.Model, completion.Id, created);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No user message, an unknown role or mode, a malformed chunk id, or an option out of range.</exception>
    /// <exception cref="KvFusionApiException">The service refused the call or failed during the stream.</exception>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<AIChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = Prepare(messages, options);
        await CreateUnnamedChunksAsync(call, cancellationToken).ConfigureAwait(false);
        var stream = await OpenStreamAsync(call, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var finish = ChatFinishReason.Length;
            FusionUsage? fusion = null;
            ChatCompletionChunk? last = null;
            CompletionUsage? usage = null;
            var more = true;
            while (more)
            {
                var chunk = stream.Current;
                last = chunk;
                fusion = chunk.Kvfusion ?? fusion;
                usage = chunk.Usage ?? usage;
                var created = DateTimeOffset.FromUnixTimeSeconds(chunk.Created);
                foreach (var choice in chunk.Choices)
                {
                    if (choice.FinishReason is { } reason)
                    {
                        finish = FinishOf(reason);
                    }

                    if (!string.IsNullOrEmpty(choice.Delta.Content))
                    {
                        yield return ChatResponses.Text(choice.Delta.Content, chunk, chunk.Model, chunk.Id, created);
                    }
                }

                more = await stream.MoveNextAsync().ConfigureAwait(false);
            }

            if (last is null || fusion is null || usage is null)
            {
                throw new InvalidDataException("The service's stream ended without its usage and kvfusion report.");
            }

            var report = Report(call, fusion, usage);
            yield return ChatResponses.Final(finish, report, last, last.Model, last.Id, DateTimeOffset.FromUnixTimeSeconds(last.Created));
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }

        if (serviceType == typeof(ChatClientMetadata))
        {
            return _metadata;
        }

        if (serviceType == typeof(KvFusionClient))
        {
            return _client;
        }

        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Does nothing: the <see cref="KvFusionClient"/> belongs to whoever created it.</summary>
    public void Dispose()
    {
    }

    private ServiceCall Prepare(IEnumerable<AIChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        // The service routes by model id and refuses one it does not serve, so a call may name any of its agents.
        var settings = ChatCallSettings.Read(options, _options, null);
        if (options?.TopK is not null)
        {
            throw new ArgumentException("ChatOptions.TopK is not supported by the KvFusion service (it samples with temperature and top-p).", nameof(options));
        }

        if (settings.Mode.Variant is not null)
        {
            throw new ArgumentException($"The KvFusion service takes no blend variant; got '{settings.Mode}' in ChatOptions.AdditionalProperties[\"{KvFusionReport.ModeProperty}\"].", nameof(options));
        }

        var transcript = ChatTranscriptReader.Read(messages, options);

        // The plain layout checks the chat as the service will (roles, a user message) and lists the chunks in prompt order.
        var prompt = ChatPromptLayout.Plain.Lay(transcript);
        var serviceMessages = transcript.Select(m => new ServiceChatMessage { Role = RoleName(m.Role), Content = TextOf(m) }).ToList();
        var chunks = prompt.Chunks.Select(c => new ServiceChunk(c.Id?.ToString(), c.Text)).ToList();
        var request = new ChatCompletionRequest
        {
            Model = options?.ModelId ?? _options.ModelId,
            Messages = serviceMessages,
            MaxCompletionTokens = settings.MaxOutputTokens,
            Temperature = settings.Temperature,
            TopP = settings.TopP,
            Seed = settings.Seed,
            Stop = settings.StopSequences.Count > 0 ? settings.StopSequences : null,
            StreamOptions = new StreamOptions { IncludeUsage = true },
        };
        return new ServiceCall(request, settings, chunks);
    }

    /// <summary>Creates the chunks that came without id, in one request.</summary>
    private async Task CreateUnnamedChunksAsync(ServiceCall call, CancellationToken ct)
    {
        var unnamed = call.Chunks.Where(c => c.Id is null).ToList();
        if (unnamed.Count > 0)
        {
            await CreateAsync(call, unnamed, ct).ConfigureAwait(false);
        }
    }

    /// <summary>After a 404: creates the named chunks the service lacks from their text; false when none was missing.</summary>
    private async Task<bool> CreateMissingChunksAsync(ServiceCall call, CancellationToken ct)
    {
        var missing = new List<ServiceChunk>();
        foreach (var chunk in call.Chunks)
        {
            try
            {
                await _client.GetChunkAsync(chunk.Id!, null, call.ChunkModel, ct).ConfigureAwait(false);
            }
            catch (KvFusionApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                if (chunk.Text is null)
                {
                    throw new KvFusionApiException(HttpStatusCode.NotFound, e.Title, $"Chunk {chunk.Id} is not stored by the service and came without its text to create it from.", e.ProblemType);
                }

                missing.Add(chunk);
            }
        }

        if (missing.Count == 0)
        {
            return false;
        }

        _logger.LogDebug("The service lacks {Count} of {Total} chunks; creating them from their text", missing.Count, call.Chunks.Count);
        await CreateAsync(call, missing, ct).ConfigureAwait(false);
        return true;
    }

    private async Task CreateAsync(ServiceCall call, List<ServiceChunk> chunks, CancellationToken ct)
    {
        var request = new CreateChunksRequest { Chunks = [.. chunks.Select(c => new ChunkSource { Text = c.Text })], Model = call.ChunkModel };
        var created = await _client.CreateChunksAsync(request, ct).ConfigureAwait(false);
        if (created.Chunks.Count != chunks.Count)
        {
            throw new InvalidDataException($"The service answered {created.Chunks.Count} chunks for a request of {chunks.Count}.");
        }

        for (var i = 0; i < chunks.Count; i++)
        {
            chunks[i].Id = created.Chunks[i].Id;
            if (created.Chunks[i].Created)
            {
                call.ChunksCreated++;
            }
        }
    }

    /// <summary>Starts the stream, creating missing chunks and starting again once when the service answers 404.</summary>
    private async Task<IAsyncEnumerator<ChatCompletionChunk>> OpenStreamAsync(ServiceCall call, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var stream = _client.StreamChatCompletionAsync(call.Request(), ct).GetAsyncEnumerator(ct);
            try
            {
                if (!await stream.MoveNextAsync().ConfigureAwait(false))
                {
                    throw new InvalidDataException("The service's stream ended before its first event.");
                }

                return stream;
            }
            catch (KvFusionApiException e) when (e.StatusCode == HttpStatusCode.NotFound && attempt == 0)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                if (!await CreateMissingChunksAsync(call, ct).ConfigureAwait(false))
                {
                    throw;
                }
            }
            catch
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private static KvFusionReport Report(ServiceCall call, FusionUsage fusion, CompletionUsage usage) => new()
    {
        Mode = fusion.Mode,
        PrefillTokens = usage.PromptTokens,
        ReusedTokens = usage.PromptTokensDetails.CachedTokens,
        RecomputedTokens = fusion.RecomputedTokens,
        OutputTokens = usage.CompletionTokens,
        ChunkIds = [.. call.Chunks.Select(c => c.Id!)],
        ChunksPrecomputed = fusion.ChunksPrecomputed + call.ChunksCreated,
        ComputeFraction = fusion.ComputeFraction,
        TtftMs = fusion.TtftMs,
        PrefillMs = fusion.StageMs.Values.Sum(),
        Quality = fusion.Quality,
        Loading = fusion.Loading,
    };

    private static ChatFinishReason FinishOf(string reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        _ => new ChatFinishReason(reason),
    };

    private static string RoleName(PromptRole role) => role switch
    {
        PromptRole.System => "system",
        PromptRole.User => "user",
        PromptRole.Assistant => "assistant",
        _ => "tool",
    };

    private static string TextOf(PromptMessage message)
    {
        var text = new StringBuilder();
        foreach (var part in message.Parts)
        {
            if (part is TextPart t)
            {
                text.Append(t.Text);
            }
        }

        return text.ToString();
    }

    /// <summary>A chunk of the call: its id once known, and its text when the caller gave it.</summary>
    private sealed class ServiceChunk(string? id, string? text)
    {
        public string? Id { get; set; } = id;

        public string? Text { get; } = text;
    }

    /// <summary>One call, checked; its chunks get their ids as the service creates them.</summary>
    private sealed class ServiceCall(ChatCompletionRequest request, ChatCallSettings settings, List<ServiceChunk> chunks)
    {
        public ChatCallSettings Settings { get; } = settings;

        public List<ServiceChunk> Chunks { get; } = chunks;

        public int ChunksCreated { get; set; }

        /// <summary>
        /// The agent whose chunks these are: a shared call's are the sender's (it stores them, with its E-cache, for
        /// the receiver); any other call's are the called model's. Null: the service's default model.
        /// </summary>
        public string? ChunkModel => Settings.SharedFrom ?? request.Model;

        /// <summary>The request with the chunks' current ids and the mode.</summary>
        public ChatCompletionRequest Request() => request with
        {
            Kvfusion = new FusionOptions
            {
                Chunks = [.. Chunks.Select(c => c.Id!)],
                Mode = Settings.Mode.Mode.ToString().ToLowerInvariant(),
                RecomputeRatio = Settings.Mode.Mode == FusionMode.Blend ? Settings.Mode.Ratio : null,
                QualityFloor = Settings.Blend.QualityFloor,
                TtftDeadlineMs = Settings.Loading?.Deadline?.TotalMilliseconds,
                MaxMeanKl = Settings.Loading?.MaxMeanKl,
                TtftSlack = Settings.Loading?.TtftSlack,
                SharedFrom = Settings.SharedFrom,
                Recompute = Settings.Mode.Recompute?.ToString(),
            },
        };
    }
}
