using System.Text.Json;
using KvFusion.Cache.Chunking;
using KvFusion.Cache.Fusion;
using KvFusion.Client.Contracts;
using KvFusion.Server.Chunks;
using KvFusion.Server.Documents;
using KvFusion.Server.Errors;
using KvFusion.Server.Generation;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Endpoints;

/// <summary><c>/v1/documents</c>: chunk a document, precompute every chunk, and find its chunks again by id.</summary>
internal static class DocumentEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        var documents = v1.MapGroup("/documents").WithTags("Documents");

        documents.MapPost("", async (HttpContext http, ModelRuntimeHost host, ChunkService chunks, DocumentCatalog catalog, IOptions<KvFusionServerOptions> options) =>
        {
            var request = await RequestBody.ReadJsonAsync(http, KvFusionJsonContext.Default.CreateDocumentRequest, options.Value.Limits.MaxRequestBodyBytes).ConfigureAwait(false);
            if (string.IsNullOrWhiteSpace(request.Text))
            {
                throw ApiProblemException.BadRequest("text must hold the document's text.");
            }

            var runtime = host.Models.Find(request.Model);
            var tenant = CallerTenant.Resolve(http, runtime);
            var tokenizer = runtime.Model.Tokenizer ?? throw ApiProblemException.BadRequest("The model has no tokenizer to chunk documents with.");
            var chunking = new ChunkingOptions { MaxTokens = request.ChunkTokens ?? 256, OverlapTokens = request.OverlapTokens ?? 0 };
            try
            {
                chunking.Validate();
            }
            catch (ArgumentException e)
            {
                throw ApiProblemException.BadRequest("Chunking options: " + e.Message);
            }

            var pieces = new DocumentChunker(new ModelTokenizerAdapter(tokenizer), chunking).Chunk(request.Text);
            if (pieces.Count > options.Value.Limits.MaxChunksPerRequest)
            {
                throw ApiProblemException.BadRequest($"The document makes {pieces.Count} chunks; at most {options.Value.Limits.MaxChunksPerRequest} are accepted (raise chunk_tokens or send it in parts).");
            }

            if (request.Stream)
            {
                await CompletionService.StartStreamAsync(http, null).ConfigureAwait(false);
            }

            var infos = new List<ChunkInfo>(pieces.Count);
            var computed = 0;
            try
            {
                foreach (var piece in pieces)
                {
                    var info = await chunks.PutAsync(runtime, tenant, ChunkInput.FromTokens(piece.Tokens), null, http.RequestAborted).ConfigureAwait(false);
                    infos.Add(info);
                    computed += info.Created ? 1 : 0;
                    if (request.Stream)
                    {
                        var progress = new DocumentProgress { Done = infos.Count, Total = pieces.Count, Computed = computed };
                        await CompletionService.WriteEventAsync(http, JsonSerializer.SerializeToUtf8Bytes(progress, KvFusionJsonContext.Default.DocumentProgress), "progress").ConfigureAwait(false);
                    }
                }

                var ids = infos.ConvertAll(c => c.Id);
                var document = new DocumentInfo
                {
                    Id = DocumentCatalog.IdOf(runtime.Model.Fingerprint.Model, ids),
                    Name = request.Name,
                    Tokens = infos.Sum(c => c.Tokens),
                    Chunks = infos,
                };
                await catalog.SaveAsync(tenant.Namespace, document, http.RequestAborted).ConfigureAwait(false);
                if (!request.Stream)
                {
                    return Results.Created($"/v1/documents/{document.Id}", document);
                }

                await CompletionService.WriteEventAsync(http, JsonSerializer.SerializeToUtf8Bytes(document, KvFusionJsonContext.Default.DocumentInfo), "document").ConfigureAwait(false);
                return Results.Empty;
            }
            catch (Exception e) when (request.Stream && http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
            {
                await StreamErrors.WriteAsync(http, e).ConfigureAwait(false);
                return Results.Empty;
            }
        })
        .Accepts<CreateDocumentRequest>("application/json")
        .Produces<DocumentInfo>(StatusCodes.Status201Created)
        .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
        .WithSummary("Chunk a document and precompute every chunk")
        .WithDescription("With stream: true the answer is server-sent events: progress {done, total, computed} per chunk, then the document.");

        documents.MapGet("/{id}", async (string id, string? model, HttpContext http, ModelRuntimeHost host, DocumentCatalog catalog) =>
        {
            var documentId = ChunkService.ParseId(id, "document id").ToString();
            var runtime = host.Models.Find(model);
            var tenant = CallerTenant.Resolve(http, runtime);
            return await catalog.FindAsync(tenant.Namespace, documentId, http.RequestAborted).ConfigureAwait(false) is { } document
                ? Results.Ok(document)
                : throw ApiProblemException.NotFound($"Document {documentId} is not stored.");
        })
        .Produces<DocumentInfo>()
        .WithSummary("A document's chunks");
    }
}
