using System.Text.Json;
using KvFusion.Cache.Container;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Scheduling;
using KvFusion.Cache.Tiers;
using KvFusion.Server.Inference;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace KvFusion.Server.Errors;

/// <summary>
/// Turns every exception of a request into ProblemDetails (RFC 9457) with a status that says whose fault it is. Known
/// failures keep their message (with folder paths scrubbed); anything else is a 500 whose body says only that, while
/// the log gets the exception.
/// </summary>
internal sealed class ApiExceptionHandler(ProblemWriter problems, ILogger<ApiExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (httpContext.Response.HasStarted)
        {
            return false;
        }

        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            // The client is gone: nobody reads an answer. 499 is what proxies log for this.
            httpContext.Response.StatusCode = 499;
            return true;
        }

        var problem = Map(exception);
        if (problem.Status >= 500 && problem.Code == "internal_error")
        {
            logger.LogError(exception, "Request {Method} {Path} failed", httpContext.Request.Method, httpContext.Request.Path);
        }

        await problems.WriteAsync(httpContext, problem, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>The problem a client sees for <paramref name="exception"/>.</summary>
    public static ApiProblemException Map(Exception exception) => exception switch
    {
        ApiProblemException p => p,
        RequestQueueFullException q => new ApiProblemException(503, "Service at capacity", q.Message, "queue_full") { RetryAfter = q.RetryAfter },
        KvMemoryFullException m => new ApiProblemException(503, "KV memory full", m.Message, "kv_memory_full") { RetryAfter = m.RetryAfter },
        FusionException f => f.Error switch
        {
            FusionError.UnknownChunk => ApiProblemException.NotFound(f.Message),
            FusionError.ModelMismatch or FusionError.IncompatibleModels or FusionError.MissingHiddenState => ApiProblemException.Unprocessable(f.Message),
            _ => ApiProblemException.BadRequest(f.Message),
        },
        KvContainerException c => ApiProblemException.Unprocessable($"The KV container was refused ({c.Error}): {c.Message}"),
        KvTierUnavailableException t => new ApiProblemException(503, "Storage unavailable", t.Message, "storage_unavailable") { RetryAfter = TimeSpan.FromSeconds(5) },
        BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge => ApiProblemException.TooLarge("The request body is larger than this service accepts."),
        BadHttpRequestException b => ApiProblemException.BadRequest(BadRequestDetail(b)),
        JsonException j => ApiProblemException.BadRequest("The body is not valid JSON for this endpoint: " + j.Message),
        _ => new ApiProblemException(500, "Internal error", "The service failed to answer this request; the failure is in its log.", "internal_error"),
    };

    private static string BadRequestDetail(BadHttpRequestException b) =>
        b.InnerException is JsonException j ? "The body is not valid JSON for this endpoint: " + j.Message : b.Message;
}
