using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Prompts;
using KvFusion.Engine.Generation;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using LoadingUsage = KvFusion.Client.Contracts.LoadingUsage;
using QualityUsage = KvFusion.Client.Contracts.QualityUsage;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>
/// <see cref="IChatClient"/> on an in-process <see cref="FusionEngine"/>. Each call lays the chat out with the model's
/// layout (<see cref="ChatPromptLayout.ForModel"/>), fuses the retrieved chunks' stored caches (precomputing and storing
/// chunks it gets as text only), and generates with the call's sampling options.
/// </summary>
/// <remarks>
/// Chunks come from the retrieved-context message (<see cref="Retrieval.KvFusionContent"/>), from any text item carrying a
/// chunk id, and from chunk markers in text (<see cref="Retrieval.KvFusionChunkMarkers"/>); they are fused after the system
/// text, in order. A chunk named by id is loaded when the store holds it, else computed from its text. Tools are not
/// called: <see cref="ChatOptions.Tools"/> is ignored. The engine is not owned: disposing the client leaves it open.
/// </remarks>
public sealed class KvFusionChatClient : IChatClient
{
    private readonly FusionEngine _engine;
    private readonly KvFusionChatClientOptions _options;
    private readonly ILogger _logger;
    private readonly ChatPromptLayout _layout;
    private readonly ChatClientMetadata _metadata;

    /// <summary>A client on <paramref name="engine"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range (see <see cref="KvFusionChatClientOptions.Validate"/>).</exception>
    public KvFusionChatClient(FusionEngine engine, KvFusionChatClientOptions? options = null, ILogger<KvFusionChatClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        _options = (options ?? new KvFusionChatClientOptions()).Snapshot();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _layout = ChatPromptLayout.ForModel(engine.Model);
        ModelId = _options.ModelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(engine.Model.Directory)));
        _metadata = new ChatClientMetadata(ChatResponses.ProviderName, null, ModelId);
    }

    /// <summary>The model id the client reports (and accepts in <see cref="ChatOptions.ModelId"/>).</summary>
    public string ModelId { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No user message, an unknown role or mode, a malformed chunk id, or an option out of range.</exception>
    /// <exception cref="FusionException">The engine refused the fusion (a prompt beyond the context, a chunk of another model).</exception>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = await PrepareAsync(messages, options, cancellationToken).ConfigureAwait(false);
        // The pieces are collected by the run itself into its result.
        await foreach (var _ in RunAsync(call, cancellationToken).ConfigureAwait(false))
        {
        }

        var result = call.Result!;
        return ChatResponses.Response(result.Text, result.FinishReason, result.Report, result, ModelId, call.ResponseId, call.Created);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">No user message, an unknown role or mode, a malformed chunk id, or an option out of range.</exception>
    /// <exception cref="FusionException">The engine refused the fusion (a prompt beyond the context, a chunk of another model).</exception>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var call = await PrepareAsync(messages, options, cancellationToken).ConfigureAwait(false);
        await foreach (var piece in RunAsync(call, cancellationToken).ConfigureAwait(false))
        {
            yield return ChatResponses.Text(piece.Text, piece.Token, ModelId, call.ResponseId, call.Created);
        }

        var result = call.Result!;
        yield return ChatResponses.Final(result.FinishReason, result.Report, result, ModelId, call.ResponseId, call.Created);
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

        if (serviceType == typeof(FusionEngine))
        {
            return _engine;
        }

        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Does nothing: the engine belongs to whoever created it.</summary>
    public void Dispose()
    {
    }

    private async Task<Call> PrepareAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var started = Stopwatch.GetTimestamp();
        var settings = ChatCallSettings.Read(options, _options, ModelId);
        if (settings.SharedFrom is not null)
        {
            throw new ArgumentException(
                $"Cross-model sharing ({KvFusionReport.SharedFromProperty} '{settings.SharedFrom}') needs the agents served together: use the KvFusion service and its chat client (AddKvFusionServiceChatClient); this client runs one model in process.",
                nameof(options));
        }
        var prompt = _layout.Lay(ChatTranscriptReader.Read(messages, options));
        var chunks = new List<ChunkInput>(prompt.Chunks.Count);
        var ids = new List<string>(prompt.Chunks.Count);
        foreach (var chunk in prompt.Chunks)
        {
            var resolved = await ResolveAsync(chunk, prompt.Prefix, ct).ConfigureAwait(false);
            chunks.Add(resolved);
            ids.Add((resolved.Id ?? _engine.ChunkIdOf(_engine.Tokenize(resolved.Text!))).ToString());
        }

        var request = (prompt with { Chunks = chunks }).ToRequest(settings.Mode.Mode, settings.Blend, settings.MaxOutputTokens) with { Loading = settings.Loading };
        return new Call(request, settings, ids, started, ChatResponses.NewResponseId(), DateTimeOffset.UtcNow);
    }

    /// <summary>The stored chunk when the store holds the id (under the prefix's sink), else the chunk's text to compute.</summary>
    private async Task<ChunkInput> ResolveAsync(ChunkInput chunk, string? prefix, CancellationToken ct)
    {
        if (chunk.Id is not { } id)
        {
            return chunk;
        }

        if (chunk.Text is null || await _engine.Store.ContainsAsync(_engine.ChunkKeyOf(id, null, prefix), ct).ConfigureAwait(false))
        {
            return ChunkInput.FromId(id);
        }

        _logger.LogDebug("Chunk {ChunkId} is not stored; computing it from its text", id);
        return ChunkInput.FromText(chunk.Text);
    }

    private async IAsyncEnumerable<Piece> RunAsync(Call call, [EnumeratorCancellation] CancellationToken ct)
    {
        using var context = await _engine.FuseAsync(call.Request, ct).ConfigureAwait(false);
        var filter = new StopSequenceFilter(call.Settings.StopSequences);
        var stats = new GenerationStats();
        var text = new StringBuilder();
        var generated = 0;
        double? ttft = null;
        await foreach (var token in context.GenerateAsync(call.Settings.Sampling, stats, ct).ConfigureAwait(false))
        {
            ttft ??= Stopwatch.GetElapsedTime(call.Started).TotalMilliseconds;
            if (token.Id >= 0)
            {
                generated++;
            }

            var visible = filter.Add(token.Text);
            if (visible.Length > 0)
            {
                text.Append(visible);
                yield return new Piece(visible, token);
            }

            if (filter.Stopped)
            {
                break;
            }
        }

        var rest = filter.Flush();
        if (rest.Length > 0)
        {
            text.Append(rest);
            yield return new Piece(rest, null);
        }

        var fusion = context.Report;
        var finish = filter.Stopped || stats.FinishReason == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
        var report = new KvFusionReport
        {
            Mode = fusion.Mode,
            PrefillTokens = fusion.TotalTokens,
            ReusedTokens = fusion.ReusedTokens,
            RecomputedTokens = fusion.RecomputedPerLayer.Count == 0 ? fusion.TotalTokens : fusion.RecomputedPerLayer[^1],
            OutputTokens = generated,
            ChunkIds = call.ChunkIds,
            ChunksPrecomputed = fusion.ChunksPrecomputed,
            ComputeFraction = fusion.ComputeFraction,
            TtftMs = ttft ?? Stopwatch.GetElapsedTime(call.Started).TotalMilliseconds,
            PrefillMs = fusion.Total.TotalMilliseconds,
            Quality = fusion.Quality is { } q ? new QualityUsage
            {
                EstimatedKl = q.EstimatedKl,
                RequestedEstimatedKl = q.RequestedEstimatedKl,
                Floor = q.Floor,
                Decision = FusionQuality.NameOf(q.Decision),
                Ratio = q.Ratio,
                RequestedRatio = q.RequestedRatio,
                CostMs = q.Cost.TotalMilliseconds,
            } : null,
            Loading = fusion.Loading is { } l ? new LoadingUsage
            {
                Choices = l.Choices,
                PredictedTtftMs = l.PredictedTtft?.TotalMilliseconds,
                PredictedMeanKl = l.PredictedMeanKl,
                MeetsGoal = l.MeetsGoal,
                Skipped = l.Skipped,
            } : null,
        };
        _logger.LogDebug(
            "Chat call fused {Tokens} prompt tokens in {Mode} mode ({Reused} reused, {Recomputed} recomputed, {Chunks} chunks) and generated {Generated}",
            report.PrefillTokens, report.Mode, report.ReusedTokens, report.RecomputedTokens, report.ChunkIds.Count, generated);
        call.Result = new KvFusionChatResult(text.ToString(), finish, report, fusion);
    }

    /// <summary>A piece of visible text and the token that completed it (none for text held back until the end).</summary>
    private readonly record struct Piece(string Text, GeneratedToken? Token);

    /// <summary>One call, checked and laid out; <see cref="Result"/> is set when its generation ends.</summary>
    private sealed record Call(FusionRequest Request, ChatCallSettings Settings, IReadOnlyList<string> ChunkIds, long Started, string ResponseId, DateTimeOffset Created)
    {
        public KvFusionChatResult? Result { get; set; }
    }
}
