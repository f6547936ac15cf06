using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Errors;

/// <summary>
/// Writes an <see cref="ApiProblemException"/> as <c>application/problem+json</c>, with OpenAI's <c>error</c> object as
/// an extension so OpenAI clients show the message too, and Retry-After where the client should wait. The problem is
/// written whatever the request's Accept header names (a client asking for <c>text/event-stream</c> gets it too).
/// </summary>
public sealed class ProblemWriter(IProblemDetailsService problemDetails, PathScrubber scrubber, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
{
    /// <summary>Writes the problem as the response.</summary>
    public async Task WriteAsync(HttpContext httpContext, ApiProblemException problem, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        ArgumentNullException.ThrowIfNull(problem);
        cancellationToken.ThrowIfCancellationRequested();
        var detail = scrubber.Scrub(problem.Message);
        httpContext.Response.StatusCode = problem.Status;
        if (problem.RetryAfter is { } retry)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        var body = new ProblemDetails
        {
            Status = problem.Status,
            Title = problem.Title,
            Detail = detail,
            Type = $"https://kvfusion.dev/problems/{problem.Code}",
        };
        body.Extensions["error"] = new OpenAiError(detail, problem.Status >= 500 ? "server_error" : "invalid_request_error", problem.Code);
        if (!await problemDetails.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = body }).ConfigureAwait(false))
        {
            // The default writer declines when Accept names neither JSON nor */* (a streaming client); an error is
            // still an RFC 9457 document, with the trace id the default writer would have added, named as it names it.
            var options = json.Value.SerializerOptions;
            body.Extensions[options.PropertyNamingPolicy?.ConvertName("traceId") ?? "traceId"] = Activity.Current?.Id ?? httpContext.TraceIdentifier;
            await httpContext.Response.WriteAsJsonAsync(body, options, "application/problem+json", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>OpenAI's error object.</summary>
    internal sealed record OpenAiError(string Message, string Type, string Code);
}
