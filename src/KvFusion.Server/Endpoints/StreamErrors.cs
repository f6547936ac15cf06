using System.Text.Json;
using KvFusion.Server.Errors;
using KvFusion.Server.Generation;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;

namespace KvFusion.Server.Endpoints;

/// <summary>A failure after a stream has started: an <c>error</c> event with the ProblemDetails, then the stream ends.</summary>
internal static class StreamErrors
{
    public static async Task WriteAsync(HttpContext http, Exception exception)
    {
        var problem = ApiExceptionHandler.Map(exception);
        var scrubber = http.RequestServices.GetRequiredService<PathScrubber>();
        var body = new ProblemDetails { Status = problem.Status, Title = problem.Title, Detail = scrubber.Scrub(problem.Message), Type = $"https://kvfusion.dev/problems/{problem.Code}" };
        await CompletionService.WriteEventAsync(http, JsonSerializer.SerializeToUtf8Bytes(body, JsonSerializerOptions.Web), "error").ConfigureAwait(false);
    }
}
