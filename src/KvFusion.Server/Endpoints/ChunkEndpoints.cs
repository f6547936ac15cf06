using KvFusion.Client.Contracts;
using KvFusion.Server.Chunks;
using KvFusion.Server.Errors;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Endpoints;

/// <summary><c>/v1/chunks</c>: precompute, describe, download, upload, delete and pin chunk caches.</summary>
internal static class ChunkEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        var chunks = v1.MapGroup("/chunks").WithTags("Chunks");

        chunks.MapPost("", async (HttpContext http, ModelRuntimeHost host, ChunkService service, IOptions<KvFusionServerOptions> options) =>
        {
            var limits = options.Value.Limits;
            var request = await RequestBody.ReadJsonAsync(http, KvFusionJsonContext.Default.CreateChunksRequest, limits.MaxRequestBodyBytes).ConfigureAwait(false);
            var runtime = host.Models.Find(request.Model);
            var response = await service.CreateAsync(runtime, CallerTenant.Resolve(http, runtime), request, limits.MaxChunksPerRequest, http.RequestAborted).ConfigureAwait(false);
            return TypedResults.Ok(response);
        })
        .Accepts<CreateChunksRequest>("application/json")
        .Produces<CreateChunksResponse>()
        .WithSummary("Precompute and store chunks")
        .WithDescription("Each chunk is text or token ids. Chunks already stored are not computed again; concurrent requests for one chunk share one computation.");

        chunks.MapGet("/{id}", async (string id, string? tenant, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service) =>
        {
            var chunkId = ChunkService.ParseId(id);
            var runtime = host.Models.Find(model);
            return TypedResults.Ok(await service.DescribeAsync(runtime, CallerTenant.Resolve(http, runtime, tenant), chunkId, http.RequestAborted).ConfigureAwait(false));
        })
        .Produces<ChunkInfo>()
        .WithSummary("A chunk's metadata");

        chunks.MapGet("/{id}/kv", async (string id, string? codec, string? tenant, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service) =>
        {
            var chunkId = ChunkService.ParseId(id);
            var runtime = host.Models.Find(model);
            var (blob, spec) = await ChunkService.ReadAsync(CallerTenant.Resolve(http, runtime, tenant), chunkId, codec, http.RequestAborted).ConfigureAwait(false);
            http.Response.ContentType = "application/octet-stream";
            http.Response.ContentLength = blob.Length;
            http.Response.Headers["X-KvFusion-Codec"] = spec.ToString();
            await http.Response.Body.WriteAsync(blob, http.RequestAborted).ConfigureAwait(false);
        })
        .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
        .WithSummary("Download a chunk's KV container")
        .WithDescription("The stored container, or the same KV re-encoded with ?codec= (raw, lz4, fp8, cachegen:1..3). Admin keys may name another tenant with ?tenant=.");

        chunks.MapPut("/{id}/kv", async (string id, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service, IOptions<KvFusionServerOptions> options) =>
        {
            var chunkId = ChunkService.ParseId(id);
            var runtime = host.Models.Find(model);
            var tenant = CallerTenant.Resolve(http, runtime);
            var blob = await RequestBody.ReadBytesAsync(http, options.Value.Limits.MaxKvUploadBytes).ConfigureAwait(false);
            var info = await service.UploadAsync(runtime, tenant, chunkId, blob, http.RequestAborted).ConfigureAwait(false);
            return info.Created ? Results.Created($"/v1/chunks/{info.Id}", info) : Results.Ok(info);
        })
        .Accepts<byte[]>("application/octet-stream")
        .Produces<ChunkInfo>(StatusCodes.Status201Created)
        .WithSummary("Upload a KV container computed elsewhere")
        .WithDescription("Verified whole before anything is stored: checksums, every section decodes, model and tokenizer fingerprints, shapes, variant, and that its token ids hash to the id. 422 otherwise.");

        chunks.MapDelete("/{id}", async (string id, string? tenant, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service) =>
        {
            var chunkId = ChunkService.ParseId(id);
            var runtime = host.Models.Find(model);
            return await service.DeleteAsync(CallerTenant.Resolve(http, runtime, tenant), chunkId, http.RequestAborted).ConfigureAwait(false)
                ? Results.NoContent()
                : throw ChunkService.UnknownChunk(chunkId);
        })
        .WithSummary("Delete a chunk from every tier");

        chunks.MapPost("/{id}/pin", async (string id, string? tenant, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service, IOptions<KvFusionServerOptions> options) =>
        {
            var chunkId = ChunkService.ParseId(id);
            var request = await RequestBody.ReadJsonAsync(http, KvFusionJsonContext.Default.PinChunkRequest, options.Value.Limits.MaxRequestBodyBytes).ConfigureAwait(false);
            if (request.TtlSeconds < 1)
            {
                throw ApiProblemException.BadRequest("ttl_seconds must be at least 1.");
            }

            var runtime = host.Models.Find(model);
            return TypedResults.Ok(await service.PinAsync(runtime, CallerTenant.Resolve(http, runtime, tenant), chunkId, TimeSpan.FromSeconds(request.TtlSeconds), http.RequestAborted).ConfigureAwait(false));
        })
        .Accepts<PinChunkRequest>("application/json")
        .Produces<ChunkInfo>()
        .WithSummary("Pin a chunk in host memory for a time");

        chunks.MapDelete("/{id}/pin", (string id, string? tenant, string? model, HttpContext http, ModelRuntimeHost host, ChunkService service) =>
        {
            var chunkId = ChunkService.ParseId(id);
            return service.Unpin(CallerTenant.Resolve(http, host.Models.Find(model), tenant), chunkId) ? Results.NoContent() : throw ApiProblemException.NotFound($"Chunk {chunkId} is not pinned.");
        })
        .WithSummary("Release a chunk's pin");
    }
}
