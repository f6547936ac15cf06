using KvFusion.Cache.Tiers;
using KvFusion.Client.Contracts;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace KvFusion.Server.Endpoints;

/// <summary><c>/v1/models</c>, <c>/healthz</c> and <c>/readyz</c>.</summary>
internal static class OperationEndpoints
{
    public static void MapModels(IEndpointRouteBuilder v1) =>
        v1.MapGet("/models", (ModelRuntimeHost host) =>
        {
            var models = host.Models;
            var data = new List<ModelInfo>(models.All.Count);
            foreach (var runtime in models.All)
            {
                data.Add(new ModelInfo
                {
                    Id = runtime.ModelId,
                    Created = runtime.LoadedAt.ToUnixTimeSeconds(),
                    Fingerprint = runtime.Model.Fingerprint.Model,
                    ContextLength = runtime.Model.Config.MaxPositionEmbeddings,
                });
            }

            return TypedResults.Ok(new ModelList { Data = data });
        })
        .WithTags("Models")
        .Produces<ModelList>()
        .WithSummary("The models served");

    public static void MapHealth(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok\n"))
            .WithTags("Operations").WithSummary("Liveness: the process answers").AllowAnonymous();

        app.MapGet("/readyz", (ModelRuntimeHost host) =>
        {
            if (host.TryGetRuntime() is not { } runtime)
            {
                return Results.Json(new ReadinessReport { Status = "not ready" }, KvFusionJsonContext.Default.ReadinessReport, statusCode: StatusCodes.Status503ServiceUnavailable);
            }

            var stats = runtime.Storage.Manager.GetStatistics();
            var tiers = new List<TierStatus> { new() { Name = runtime.Storage.Manager.Memory.Name, Up = true } };
            var up = true;
            foreach (var t in stats.Tiers)
            {
                var tierUp = t.State == KvTierState.Up;
                up &= tierUp;
                tiers.Add(new TierStatus { Name = t.Tier, Up = tierUp, PendingWrites = t.QueuedWrites });
            }

            var report = new ReadinessReport { Status = up ? "ready" : "not ready", Model = runtime.ModelId, Tiers = tiers };
            return Results.Json(report, KvFusionJsonContext.Default.ReadinessReport, statusCode: up ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        })
        .WithTags("Operations").WithSummary("Readiness: model loaded and storage tiers up").AllowAnonymous()
        .Produces<ReadinessReport>();
    }
}
