using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using KvFusion.Client.Contracts;
using Microsoft.AspNetCore.DataProtection;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Server.Auth;
using KvFusion.Server.Chunks;
using KvFusion.Server.Documents;
using KvFusion.Server.Endpoints;
using KvFusion.Server.Errors;
using KvFusion.Server.Generation;
using KvFusion.Server.Inference;
using KvFusion.Server.Telemetry;
using KvFusion.Storage.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using Scalar.AspNetCore;

namespace KvFusion.Server.Hosting;

/// <summary>Registers the service and maps its pipeline; <see cref="KvFusionServerHost"/> puts both on a web host.</summary>
public static class KvFusionServerExtensions
{
    /// <summary>Where the OpenAPI document is served.</summary>
    public const string OpenApiPath = "/openapi/v1.json";

    /// <summary>Where the interactive API reference is served.</summary>
    public const string DocsPath = "/docs";

    /// <summary>
    /// Adds the service: options (sections <c>KvFusion</c> and <c>Storage</c>, validated at start), API-key
    /// authentication, rate limits, ProblemDetails, OpenAPI, metrics, the model runtime and the request queue.
    /// <paramref name="backends"/> creates the compute backend (default: the CPU).
    /// </summary>
    public static IServiceCollection AddKvFusionServer(this IServiceCollection services, IConfiguration configuration, ComputeBackendFactory? backends = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<KvFusionServerOptions>()
            .Bind(configuration.GetSection(KvFusionServerOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<KvFusionServerOptions>, KvFusionServerOptionsValidator>();
        services.AddKvFusionStorageOptions(configuration);

        services.TryAddSingleton(backends ?? (() => new CpuBackend()));
        services.AddSingleton<PathScrubber>();
        services.AddSingleton<ProblemWriter>();
        services.AddSingleton<ModelRuntimeHost>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelRuntimeHost>());
        services.TryAddSingleton<IRequestScheduler, BoundedRequestScheduler>();
        services.AddSingleton<ChunkPins>();
        services.AddSingleton<ChunkService>();
        services.AddSingleton<DocumentCatalog>();
        services.AddSingleton<CompletionService>();
        services.AddSingleton<KvFusionMetrics>();
        services.AddSingleton<ApiKeyDirectory>();

        services.ConfigureHttpJsonOptions(o =>
        {
            // The wire types serialize through the client's context, so both sides agree on every name.
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, KvFusionJsonContext.Default);
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });

        // Nothing here uses cookies or protected payloads; keys in memory keep the host from writing key files.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        services.AddProblemDetails();
        services.AddExceptionHandler<ApiExceptionHandler>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddRouting();
        services.AddAuthorization();
        services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                if (!http.Request.Path.StartsWithSegments("/v1"))
                {
                    return RateLimitPartition.GetNoLimiter("operations");
                }

                var limits = http.RequestServices.GetRequiredService<IOptions<KvFusionServerOptions>>().Value.RateLimit;
                var key = http.User.FindFirst(TenantClaims.KeyId)?.Value ?? "ip:" + http.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.Burst,
                    TokensPerPeriod = limits.PerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            o.OnRejected = async (context, ct) =>
            {
                var retry = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
                var writer = context.HttpContext.RequestServices.GetRequiredService<ProblemWriter>();
                await writer.WriteAsync(context.HttpContext, new ApiProblemException(429, "Too many requests", "This API key is over its request rate; retry after the time in Retry-After.", "rate_limited") { RetryAfter = retry }, ct).ConfigureAwait(false);
            };
        });

        services.AddOpenApi("v1", o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "KvFusion cache service";
            document.Info.Version = "v1";
            document.Info.Description = "Precompute, store and fuse KV caches of document chunks; OpenAI-compatible completions that reuse them.";
            return Task.CompletedTask;
        }));
        services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(KvFusionMetrics.MeterName)
            .AddAspNetCoreInstrumentation()
            .AddPrometheusExporter());
        return services;
    }

    /// <summary>
    /// The pipeline: errors as ProblemDetails, authentication, rate limits, then the endpoints (<c>/v1</c>, health,
    /// metrics, OpenAPI and its UI).
    /// </summary>
    public static IApplicationBuilder UseKvFusionServer(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        _ = app.ApplicationServices.GetRequiredService<KvFusionMetrics>();
        app.UseExceptionHandler();
        app.UseStatusCodePages(async context =>
        {
            var http = context.HttpContext;
            var status = http.Response.StatusCode;
            var writer = http.RequestServices.GetRequiredService<ProblemWriter>();
            var problem = status switch
            {
                404 => ApiProblemException.NotFound($"There is no endpoint at {http.Request.Method} {http.Request.Path}."),
                405 => new ApiProblemException(405, "Method not allowed", $"{http.Request.Method} is not allowed on {http.Request.Path}.", "method_not_allowed"),
                415 => new ApiProblemException(415, "Unsupported media type", $"{http.Request.Path} takes a body of another media type than {http.Request.ContentType}; see the API reference at {DocsPath}.", "unsupported_media_type"),
                _ => new ApiProblemException(status, "Request failed", $"The request failed with status {status}.", "request_failed"),
            };
            await writer.WriteAsync(http, problem, http.RequestAborted).ConfigureAwait(false);
        });
        app.UseRouting();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        app.UseEndpoints(MapKvFusionEndpoints);
        return app;
    }

    private static void MapKvFusionEndpoints(IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1").RequireAuthorization();
        ChunkEndpoints.Map(v1);
        DocumentEndpoints.Map(v1);
        CompletionEndpoints.Map(v1);
        OperationEndpoints.MapModels(v1);
        OperationEndpoints.MapHealth(endpoints);
        endpoints.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
        endpoints.MapOpenApi(OpenApiPath).AllowAnonymous();
        endpoints.MapScalarApiReference(DocsPath, o => o
            .WithTitle("KvFusion API")
            .WithOpenApiRoutePattern(OpenApiPath)).AllowAnonymous();
    }
}
