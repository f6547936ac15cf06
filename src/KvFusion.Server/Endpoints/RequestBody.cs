using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using KvFusion.Server.Errors;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace KvFusion.Server.Endpoints;

/// <summary>
/// Reads request bodies within a byte limit: a declared length over it is refused before anything is read, and an
/// undeclared one is cut at the limit, so no body larger than the limit is ever held in memory.
/// </summary>
internal static class RequestBody
{
    /// <summary>The body as <typeparamref name="T"/>; 400 for bad JSON or an empty body, 413 past the limit, 415 for another media type.</summary>
    public static async Task<T> ReadJsonAsync<T>(HttpContext context, JsonTypeInfo<T> type, long limit)
        where T : class
    {
        var contentType = context.Request.ContentType;
        if (contentType is not null && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) && !contentType.Contains("+json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiProblemException(415, "Unsupported media type", $"Send the body as application/json, not {contentType}.", "unsupported_media_type");
        }

        var bytes = await ReadBytesAsync(context, limit).ConfigureAwait(false);
        if (bytes.Length == 0)
        {
            throw ApiProblemException.BadRequest("The request has no body; send a JSON object.");
        }

        try
        {
            return JsonSerializer.Deserialize(bytes, type) ?? throw ApiProblemException.BadRequest("The body is null; send a JSON object.");
        }
        catch (JsonException e)
        {
            throw ApiProblemException.BadRequest("The body is not valid JSON for this endpoint: " + e.Message);
        }
    }

    /// <summary>The whole body, at most <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]> ReadBytesAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength is { } declared && declared > limit)
        {
            throw TooLarge(limit);
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(context.Request.ContentLength ?? 16 * 1024, limit) + 1);
        var body = context.Request.Body;
        while (true)
        {
            var span = buffer.GetMemory(64 * 1024);
            int n;
            try
            {
                n = await body.ReadAsync(span, context.RequestAborted).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                throw TooLarge(limit);
            }

            if (n == 0)
            {
                break;
            }

            buffer.Advance(n);
            if (buffer.WrittenCount > limit)
            {
                throw TooLarge(limit);
            }
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static ApiProblemException TooLarge(long limit) =>
        ApiProblemException.TooLarge($"The request body is larger than the {limit} bytes this endpoint accepts.");
}
