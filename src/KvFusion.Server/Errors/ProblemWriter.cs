using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace KvFusion.Server.Errors;

/// <summary>
/// Writes an <see cref="ApiProblemException"/> as <c>application/problem+json</c>, with OpenAI's <c>error</c> object as
/// an extension so OpenAI clients show the message too, and Retry-After where the client should wait.
/// </summary>
public sealed class ProblemWriter(IProblemDetailsService problemDetails, PathScrubber scrubber)
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
        await problemDetails.WriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = body }).ConfigureAwait(false);
    }

    /// <summary>OpenAI's error object.</summary>
    internal sealed record OpenAiError(string Message, string Type, string Code);
}
