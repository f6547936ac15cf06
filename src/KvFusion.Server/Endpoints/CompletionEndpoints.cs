using System.Diagnostics;
using KvFusion.Client.Contracts;
using KvFusion.Server.Generation;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Endpoints;

/// <summary>OpenAI-compatible <c>/v1/chat/completions</c> and <c>/v1/completions</c>, with the <c>kvfusion</c> object.</summary>
internal static class CompletionEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        var group = v1.MapGroup("").WithTags("Completions");

        group.MapPost("/chat/completions", async (HttpContext http, ModelRuntimeHost host, CompletionService service, IOptions<KvFusionServerOptions> options) =>
        {
            var arrived = Stopwatch.GetTimestamp();
            var request = await RequestBody.ReadJsonAsync(http, KvFusionJsonContext.Default.ChatCompletionRequest, options.Value.Limits.MaxRequestBodyBytes).ConfigureAwait(false);
            var models = host.Models;
            var runtime = models.Find(request.Model);
            var (prefix, query) = ChatPromptBuilder.Build(request.Messages, options.Value.Limits.MaxMessages, runtime.Model, request.Kvfusion?.Chunks is { Count: > 0 });
            var tenant = CallerTenant.Resolve(http, runtime);
            var plan = service.Plan(request, request.MaxCompletionTokens, prefix, query, models, runtime, tenant);
            var format = new ChatCompletionFormat(NewId("chatcmpl"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), runtime.ModelId);
            await RunAsync(http, service, tenant, plan, format, arrived).ConfigureAwait(false);
        })
        .Accepts<ChatCompletionRequest>("application/json")
        .Produces<ChatCompletion>()
        .Produces<ChatCompletionChunk>(StatusCodes.Status200OK, "text/event-stream")
        .WithSummary("Chat completion, fusing stored chunks")
        .WithDescription("OpenAI-compatible. The optional kvfusion object names stored chunks (placed after the system prompt) and the mode: {\"chunks\": [ids], \"mode\": \"blend\", \"recompute_ratio\": 0.15}. model names the agent; with {\"shared_from\": \"AGENT\", \"chunks\": [ids]} it fuses caches another agent of its family stored (mode share, recomputing the pair's profiled layer ranges or kvfusion.recompute). usage.prompt_tokens_details.cached_tokens counts the tokens served from stored caches; the kvfusion object of the answer reports the fusion and its TTFT.");

        group.MapPost("/completions", async (HttpContext http, ModelRuntimeHost host, CompletionService service, IOptions<KvFusionServerOptions> options) =>
        {
            var arrived = Stopwatch.GetTimestamp();
            var request = await RequestBody.ReadJsonAsync(http, KvFusionJsonContext.Default.CompletionRequest, options.Value.Limits.MaxRequestBodyBytes).ConfigureAwait(false);
            var models = host.Models;
            var runtime = models.Find(request.Model);
            if (string.IsNullOrEmpty(request.Prompt))
            {
                throw Errors.ApiProblemException.BadRequest("prompt must be a non-empty string.");
            }

            var tenant = CallerTenant.Resolve(http, runtime);
            var plan = service.Plan(request, null, null, request.Prompt, models, runtime, tenant);
            var format = new TextCompletionFormat(NewId("cmpl"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), runtime.ModelId);
            await RunAsync(http, service, tenant, plan, format, arrived).ConfigureAwait(false);
        })
        .Accepts<CompletionRequest>("application/json")
        .Produces<Completion>()
        .Produces<Completion>(StatusCodes.Status200OK, "text/event-stream")
        .WithSummary("Text completion, fusing stored chunks")
        .WithDescription("OpenAI-compatible legacy completions; kvfusion chunks are placed before the prompt.");
    }

    private static async Task RunAsync(HttpContext http, CompletionService service, Inference.TenantEngine tenant, GenerationPlan plan, CompletionFormat format, long arrived)
    {
        try
        {
            await service.RunAsync(http, tenant, plan, format, arrived).ConfigureAwait(false);
        }
        catch (Exception e) when (http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested && e is not OperationCanceledException)
        {
            await StreamErrors.WriteAsync(http, e).ConfigureAwait(false);
        }
    }

    private static string NewId(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..24];
}
