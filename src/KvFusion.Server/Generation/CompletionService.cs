using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Sharing;
using KvFusion.Client.Contracts;
using KvFusion.Engine.Generation;
using KvFusion.Server.Chunks;
using KvFusion.Server.Errors;
using KvFusion.Server.Hosting;
using KvFusion.Server.Inference;
using KvFusion.Server.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Generation;

/// <summary>What a completion request asks for, checked: the fusion, the sampling and how to answer.</summary>
internal sealed record GenerationPlan(FusionRequest Fusion, SamplingOptions Sampling, IReadOnlyList<string> Stops, bool Stream, bool IncludeUsage, bool SaveConversation = false);

/// <summary>
/// Runs completions: checks the request, waits for a place in the queue, fuses the prompt from the tenant's stored
/// chunks, and generates, whole or as server-sent events. A client that goes away cancels everything it started.
/// </summary>
public sealed class CompletionService(IRequestScheduler queue, KvFusionMetrics metrics, IOptions<KvFusionServerOptions> options)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    /// <summary>Checks the shared fields and builds the plan; 400 (or 404 for another model) on anything off.</summary>
    /// <param name="request">The request.</param>
    /// <param name="maxCompletionTokens">max_completion_tokens, for chat.</param>
    /// <param name="prefix">The system prompt.</param>
    /// <param name="query">The rest of the prompt.</param>
    /// <param name="models">The served models (a share request names its sender among them).</param>
    /// <param name="runtime">The requested model (the receiver of a share).</param>
    /// <param name="tenant">The caller's engine of that model; a sender's caches are read from the same tenant's namespace.</param>
    internal GenerationPlan Plan(GenerationRequest request, int? maxCompletionTokens, string? prefix, string query, ServedModels models, ModelRuntime runtime, TenantEngine tenant)
    {
        var limits = options.Value.Limits;

        if (request.N is { } n && n != 1)
        {
            throw ApiProblemException.BadRequest($"n must be 1 (got {n}): one choice per request.");
        }

        if (request.MaxTokens is not null && maxCompletionTokens is not null && request.MaxTokens != maxCompletionTokens)
        {
            throw ApiProblemException.BadRequest("max_tokens and max_completion_tokens disagree; send one.");
        }

        var max = maxCompletionTokens ?? request.MaxTokens ?? limits.DefaultCompletionTokens;
        if (max < 1 || max > limits.MaxCompletionTokens)
        {
            throw ApiProblemException.BadRequest($"max_tokens must be between 1 and {limits.MaxCompletionTokens}, got {max}.");
        }

        var temperature = request.Temperature ?? 1f;
        if (!(temperature >= 0 && temperature <= 2))
        {
            throw ApiProblemException.BadRequest($"temperature must be between 0 and 2, got {temperature.ToString(CultureInfo.InvariantCulture)}.");
        }

        var topP = request.TopP ?? 1f;
        if (!(topP > 0 && topP <= 1))
        {
            throw ApiProblemException.BadRequest($"top_p must be in (0, 1], got {topP.ToString(CultureInfo.InvariantCulture)}.");
        }

        var stops = request.Stop ?? [];
        if (stops.Count > 4 || stops.Any(string.IsNullOrEmpty))
        {
            throw ApiProblemException.BadRequest("stop takes up to 4 non-empty strings.");
        }

        if (request.StreamOptions is not null && request.Stream != true)
        {
            throw ApiProblemException.BadRequest("stream_options is only allowed with stream: true.");
        }

        var fusion = FusionOf(request.Kvfusion, limits.MaxChunksPerRequest, options.Value.Quality.Floor, models, runtime, tenant) with
        {
            Prefix = prefix,
            Query = query,
            ReserveTokens = max,
        };
        var sampling = new SamplingOptions
        {
            Temperature = temperature,
            TopP = topP,
            Seed = request.Seed is { } seed ? unchecked((ulong)seed) : (ulong)Random.Shared.NextInt64(),
            MaxTokens = max,
        };
        return new GenerationPlan(fusion, sampling, stops, request.Stream == true, request.StreamOptions?.IncludeUsage == true, request.Kvfusion?.SaveConversation == true);
    }

    /// <summary>Runs the plan and writes the answer in <paramref name="format"/>.</summary>
    internal async Task RunAsync(HttpContext http, TenantEngine tenant, GenerationPlan plan, CompletionFormat format, long arrived)
    {
        var ct = http.RequestAborted;
        using var lease = await queue.EnterAsync(ct).ConfigureAwait(false);
        using var context = await tenant.Engine.FuseAsync(plan.Fusion, ct).ConfigureAwait(false);
        var report = context.Report;
        var filter = new StopSequenceFilter(plan.Stops);
        var stats = new GenerationStats();
        var text = new StringBuilder();
        FusionUsage? fusion = null;
        var generated = 0;
        var answer = plan.SaveConversation ? new List<int>() : null;
        var started = false;
        await foreach (var token in context.GenerateAsync(plan.Sampling, stats, ct).ConfigureAwait(false))
        {
            if (fusion is null)
            {
                fusion = Usage(report, lease, arrived);
                metrics.RecordFusion(report, fusion.TtftMs);
            }

            if (token.Id >= 0)
            {
                generated++;
                answer?.Add(token.Id);
            }

            var visible = filter.Add(token.Text);
            if (plan.Stream)
            {
                if (!started)
                {
                    started = true;
                    await StartStreamAsync(http, format.Start(fusion)).ConfigureAwait(false);
                }

                if (visible.Length > 0)
                {
                    await WriteEventAsync(http, format.Delta(visible)).ConfigureAwait(false);
                }
            }
            else
            {
                text.Append(visible);
            }

            if (filter.Stopped)
            {
                break;
            }
        }

        fusion ??= Usage(report, lease, arrived);
        if (generated == 0)
        {
            metrics.RecordFusion(report, fusion.TtftMs);
        }

        metrics.RecordGenerated(generated);
        if (answer is not null)
        {
            fusion = fusion with { ConversationId = await SaveConversationAsync(tenant, context.PromptTokens, answer, ct).ConfigureAwait(false) };
        }

        var rest = filter.Flush();
        var reason = filter.Stopped || stats.FinishReason == FinishReason.Stop ? "stop" : "length";
        var usage = new CompletionUsage
        {
            PromptTokens = report.TotalTokens,
            CompletionTokens = generated,
            TotalTokens = report.TotalTokens + generated,
            PromptTokensDetails = new PromptTokensDetails { CachedTokens = report.ReusedTokens },
        };
        if (!plan.Stream)
        {
            text.Append(rest);
            http.Response.ContentType = "application/json";
            await http.Response.Body.WriteAsync(format.Whole(text.ToString(), reason, usage, fusion), ct).ConfigureAwait(false);
            return;
        }

        if (!started)
        {
            await StartStreamAsync(http, format.Start(fusion)).ConfigureAwait(false);
        }

        if (rest.Length > 0)
        {
            await WriteEventAsync(http, format.Delta(rest)).ConfigureAwait(false);
        }

        await WriteEventAsync(http, format.Finish(reason)).ConfigureAwait(false);
        // A saved conversation's id is only known at the end: the usage event carries it, asked for or not.
        if (plan.IncludeUsage || answer is not null)
        {
            await WriteEventAsync(http, format.Usage(usage, fusion)).ConfigureAwait(false);
        }

        await http.Response.Body.WriteAsync(Done, ct).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores the exchange (prompt and answer) as one chunk of the tenant's model, computed in one pass (with the
    /// E-cache the model keeps for its agents), so another agent can take it over by id instead of by text.
    /// </summary>
    private static async Task<string> SaveConversationAsync(TenantEngine tenant, IReadOnlyList<int> prompt, List<int> answer, CancellationToken ct)
    {
        var tokens = new int[prompt.Count + answer.Count];
        for (var i = 0; i < prompt.Count; i++)
        {
            tokens[i] = prompt[i];
        }

        answer.CopyTo(tokens, prompt.Count);
        var id = await tenant.Engine.PutChunkAsync(ChunkInput.FromTokens(tokens), cancellationToken: ct).ConfigureAwait(false);
        return id.ToString();
    }

    /// <summary>Starts a server-sent event stream (headers, then the first event when there is one).</summary>
    internal static async Task StartStreamAsync(HttpContext http, byte[]? first)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        if (first is not null)
        {
            await WriteEventAsync(http, first).ConfigureAwait(false);
        }
        else
        {
            await http.Response.StartAsync(http.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>Writes one <c>data:</c> event and flushes it to the client.</summary>
    internal static async Task WriteEventAsync(HttpContext http, byte[] json, string? eventName = null)
    {
        var body = http.Response.Body;
        var ct = http.RequestAborted;
        if (eventName is not null)
        {
            await body.WriteAsync(Encoding.ASCII.GetBytes("event: " + eventName + "\n"), ct).ConfigureAwait(false);
        }

        await body.WriteAsync(DataPrefix, ct).ConfigureAwait(false);
        await body.WriteAsync(json, ct).ConfigureAwait(false);
        await body.WriteAsync(EventEnd, ct).ConfigureAwait(false);
        await body.FlushAsync(ct).ConfigureAwait(false);
    }

    private static FusionRequest FusionOf(FusionOptions? kv, int maxChunks, double? defaultFloor, ServedModels models, ModelRuntime receiver, TenantEngine tenant)
    {
        var mode = FusionMode.Blend;
        var ratio = BlendOptions.DefaultRatio;
        var chunks = new List<ChunkInput>();
        if (kv is null)
        {
            // A plain OpenAI request: exact prefix reuse, which changes no output and serves repeated system prompts from the store.
            return new FusionRequest { Mode = FusionMode.Prefix, Chunks = chunks };
        }

        if (kv.Mode is { } name)
        {
            mode = name switch
            {
                "blend" => FusionMode.Blend,
                "reuse" => FusionMode.Reuse,
                "prefix" => FusionMode.Prefix,
                "full" => FusionMode.Full,
                "share" => FusionMode.Share,
                _ => throw ApiProblemException.BadRequest($"kvfusion.mode '{Clip(name)}' is not one of blend, reuse, prefix, full, share."),
            };
        }
        else if (kv.SharedFrom is not null)
        {
            mode = FusionMode.Share;
        }

        if (kv.RecomputeRatio is { } r)
        {
            if (mode != FusionMode.Blend)
            {
                throw ApiProblemException.BadRequest("kvfusion.recompute_ratio applies to mode blend only.");
            }

            ratio = r > 0 && r <= 1 ? r : throw ApiProblemException.BadRequest($"kvfusion.recompute_ratio must be in (0, 1], got {r.ToString(CultureInfo.InvariantCulture)}.");
        }

        var floor = defaultFloor;
        if (kv.QualityFloor is { } f)
        {
            if (mode != FusionMode.Blend)
            {
                throw ApiProblemException.BadRequest("kvfusion.quality_floor applies to mode blend only.");
            }

            floor = f >= 0 && double.IsFinite(f)
                ? f
                : throw ApiProblemException.BadRequest($"kvfusion.quality_floor is an estimated KL: a number of at least 0, got {f.ToString(CultureInfo.InvariantCulture)}.");
        }

        var ids = kv.Chunks ?? [];
        if (ids.Count > maxChunks)
        {
            throw ApiProblemException.BadRequest($"kvfusion.chunks names {ids.Count} chunks; at most {maxChunks} are accepted.");
        }

        foreach (var id in ids)
        {
            chunks.Add(ChunkInput.FromId(ChunkService.ParseId(id)));
        }

        var request = new FusionRequest { Mode = mode, Blend = BlendOptions.Default(ratio) with { QualityFloor = floor }, Chunks = chunks, Loading = LoadGoalOf(kv) };
        // Blend combines with sharing: over another agent's caches it recomputes the pair's ranges and its own selection.
        return mode == FusionMode.Share || (mode == FusionMode.Blend && kv.SharedFrom is not null)
            ? request with { SharedFrom = SharedFrom(kv, models, receiver, tenant) }
            : kv.SharedFrom is not null || kv.Recompute is not null
                ? throw ApiProblemException.BadRequest("kvfusion.shared_from and kvfusion.recompute apply to modes share and blend only.")
                : request;
    }

    /// <summary>The request's loading goal, or null when it sets none.</summary>
    private static LoadGoal? LoadGoalOf(FusionOptions kv)
    {
        if (kv.TtftDeadlineMs is null && kv.MaxMeanKl is null && kv.TtftSlack is null)
        {
            return null;
        }

        TimeSpan? deadline = kv.TtftDeadlineMs is { } ms
            ? ms > 0 && double.IsFinite(ms) ? TimeSpan.FromMilliseconds(ms) : throw ApiProblemException.BadRequest($"kvfusion.ttft_deadline_ms must be a number of milliseconds above 0, got {ms.ToString(CultureInfo.InvariantCulture)}.")
            : null;
        double? budget = kv.MaxMeanKl is { } kl
            ? kl >= 0 && double.IsFinite(kl) ? kl : throw ApiProblemException.BadRequest($"kvfusion.max_mean_kl is a KL: a number of at least 0, got {kl.ToString(CultureInfo.InvariantCulture)}.")
            : null;
        var slack = kv.TtftSlack is { } s
            ? s >= 0 && s <= 10 ? s : throw ApiProblemException.BadRequest($"kvfusion.ttft_slack is a fraction of TTFT from 0 to 10, got {s.ToString(CultureInfo.InvariantCulture)}.")
            : LoadGoal.DefaultTtftSlack;
        return new LoadGoal(deadline, budget, slack);
    }

    /// <summary>The sender's caches in the caller's own namespace, and the layer ranges the receiver recomputes.</summary>
    private static SharedCacheSource SharedFrom(FusionOptions kv, ServedModels models, ModelRuntime receiver, TenantEngine tenant)
    {
        if (string.IsNullOrEmpty(kv.SharedFrom))
        {
            throw ApiProblemException.BadRequest("Mode share needs kvfusion.shared_from: the agent (model id) whose stored caches are fused.");
        }

        if (kv.Chunks is not { Count: > 0 })
        {
            throw ApiProblemException.BadRequest("Sharing needs kvfusion.chunks: the ids of the caches the other agent stored (a conversation or documents).");
        }

        var sender = models.Find(kv.SharedFrom, "agent");
        RecomputeRanges ranges;
        if (kv.Recompute is { } text)
        {
            try
            {
                ranges = RecomputeRanges.Parse(text);
                ranges.CheckFits(receiver.Model.Config.LayerCount);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw ApiProblemException.BadRequest($"kvfusion.recompute: {e.Message}");
            }
        }
        else
        {
            ranges = models.ProfileFor(sender, receiver)?.Recompute
                ?? (sender == receiver
                    ? RecomputeRanges.None
                    : throw ApiProblemException.BadRequest(
                        $"No sharing profile for {sender.ModelId} → {receiver.ModelId} is loaded (KvFusion:Sharing:Profiles): name the layer ranges to recompute in kvfusion.recompute, e.g. \"1-3\" or \"none\"."));
        }

        return SharedCacheSource.From(sender.Model, sender.For(tenant.Tenant).Store, ranges);
    }

    private static FusionUsage Usage(FusionReport report, RequestSlot lease, long arrived)
    {
        var stages = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, time) in report.StageTimes)
        {
            stages[name] = Math.Round(time.TotalMilliseconds, 3);
        }

        return new FusionUsage
        {
            Mode = report.Mode,
            ReusedTokens = report.ReusedTokens,
            RecomputedTokens = report.RecomputedPerLayer.Count == 0 ? report.TotalTokens : report.RecomputedPerLayer[^1],
            ChunksPrecomputed = report.ChunksPrecomputed,
            ComputeFraction = Math.Round(report.ComputeFraction, 4),
            TtftMs = Math.Round(Stopwatch.GetElapsedTime(arrived).TotalMilliseconds, 3),
            QueueMs = Math.Round(lease.Waited.TotalMilliseconds, 3),
            StageMs = stages,
            Quality = report.Quality is { } q ? new QualityUsage
            {
                EstimatedKl = Math.Round(q.EstimatedKl, 6),
                RequestedEstimatedKl = Math.Round(q.RequestedEstimatedKl, 6),
                Floor = q.Floor,
                Decision = FusionQuality.NameOf(q.Decision),
                Ratio = Math.Round(q.Ratio, 4),
                RequestedRatio = Math.Round(q.RequestedRatio, 4),
                CostMs = Math.Round(q.Cost.TotalMilliseconds, 3),
            } : null,
            Loading = report.Loading is { } l ? new LoadingUsage
            {
                Choices = l.Choices,
                PredictedTtftMs = l.PredictedTtft is { } t ? Math.Round(t.TotalMilliseconds, 3) : null,
                PredictedMeanKl = l.PredictedMeanKl is { } k ? Math.Round(k, 6) : null,
                MeetsGoal = l.MeetsGoal,
                Skipped = l.Skipped,
            } : null,
        };
    }

    private static string Clip(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
