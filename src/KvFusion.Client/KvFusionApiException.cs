using System.Globalization;
using System.Net;
using System.Text;
using KvFusion.Client.Internal;

namespace KvFusion.Client;

/// <summary>
/// The KvFusion service answered with an error: an HTTP error status, or an <c>error</c> event in a stream. Built from
/// the RFC 9457 problem details the service sends (<c>application/problem+json</c>).
/// </summary>
public sealed class KvFusionApiException : Exception
{
    /// <summary>Characters of a body that is not problem details quoted in the message.</summary>
    internal const int BodyExcerptLength = 200;

    /// <summary>Bytes of an error body read at most.</summary>
    private const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>Creates the exception for an error status, building the message from the problem details.</summary>
    /// <param name="statusCode">The HTTP status (for an error event in a stream: the status the event names).</param>
    /// <param name="title">The problem's title.</param>
    /// <param name="detail">The problem's detail.</param>
    /// <param name="problemType">The problem's type URI.</param>
    /// <param name="retryAfter">How long the service asked to wait before retrying (<c>Retry-After</c>).</param>
    public KvFusionApiException(HttpStatusCode statusCode, string? title, string? detail, string? problemType = null, TimeSpan? retryAfter = null)
        : this(statusCode, title, detail, problemType, retryAfter, BuildMessage(statusCode, null, title, detail, null))
    {
    }

    /// <summary>Creates the exception with a message only (status 0: not from a response).</summary>
    public KvFusionApiException()
        : this("The KvFusion service answered with an error.")
    {
    }

    /// <summary>Creates the exception with a message only (status 0: not from a response).</summary>
    /// <param name="message">The message.</param>
    public KvFusionApiException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause (status 0: not from a response).</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public KvFusionApiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    private KvFusionApiException(HttpStatusCode statusCode, string? title, string? detail, string? problemType, TimeSpan? retryAfter, string message)
        : base(message)
    {
        StatusCode = statusCode;
        Title = title;
        Detail = detail;
        ProblemType = problemType;
        RetryAfter = retryAfter;
    }

    /// <summary>The HTTP status of the error.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem's title (a short summary of its type), if the service sent problem details.</summary>
    public string? Title { get; }

    /// <summary>The problem's detail (what went wrong this time), if the service sent problem details.</summary>
    public string? Detail { get; }

    /// <summary>The problem's <c>type</c> URI, if the service sent one.</summary>
    public string? ProblemType { get; }

    /// <summary>How long the service asked to wait before retrying (its <c>Retry-After</c> header, on 429 and 503).</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Reads an error response into an exception (the body as problem details, or an excerpt of it).</summary>
    internal static async Task<KvFusionApiException> FromResponseAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(response.Content, cancellationToken).ConfigureAwait(false);
        var retryAfter = GetRetryAfter(response);
        var problem = body.Length > 0 && LooksLikeJson(response.Content) ? ProblemDetailsPayload.TryParse(body) : null;
        if (problem is not null)
        {
            return FromProblem(problem, response.StatusCode, response.ReasonPhrase, retryAfter);
        }

        var text = Encoding.UTF8.GetString(body).Trim();
        var excerpt = text.Length <= BodyExcerptLength ? text : string.Concat(text.AsSpan(0, BodyExcerptLength), "…");
        var message = BuildMessage(response.StatusCode, response.ReasonPhrase, null, null, excerpt.Length > 0 ? excerpt : null);
        return new KvFusionApiException(response.StatusCode, null, null, null, retryAfter, message);
    }

    /// <summary>An exception from problem details (of an error response or an <c>error</c> event).</summary>
    internal static KvFusionApiException FromProblem(ProblemDetailsPayload problem, HttpStatusCode fallbackStatus, string? reasonPhrase = null, TimeSpan? retryAfter = null)
    {
        var status = problem.Status is >= 100 and <= 999 ? (HttpStatusCode)problem.Status.Value : fallbackStatus;
        if (status != fallbackStatus)
        {
            reasonPhrase = null;
        }

        var message = BuildMessage(status, reasonPhrase, problem.Title, problem.Detail, null);
        return new KvFusionApiException(status, problem.Title, problem.Detail, problem.Type, retryAfter, message);
    }

    /// <summary>"404 Not Found: Chunk … is not stored.": the status, the title (or reason phrase), then the detail.</summary>
    private static string BuildMessage(HttpStatusCode status, string? reasonPhrase, string? title, string? detail, string? bodyExcerpt)
    {
        var message = new StringBuilder();
        message.Append(((int)status).ToString(CultureInfo.InvariantCulture));
        var summary = !string.IsNullOrWhiteSpace(title) ? title : !string.IsNullOrWhiteSpace(reasonPhrase) ? reasonPhrase : ReasonPhrase(status);
        if (summary is not null)
        {
            message.Append(' ').Append(summary.Trim());
        }

        var more = !string.IsNullOrWhiteSpace(detail) ? detail.Trim() : bodyExcerpt;
        if (more is not null)
        {
            message.Append(": ").Append(more);
        }

        return message.ToString();
    }

    /// <summary>"Not Found" from <see cref="HttpStatusCode.NotFound"/>; null for a status without a name.</summary>
    private static string? ReasonPhrase(HttpStatusCode status)
    {
        if (!Enum.IsDefined(status))
        {
            return null;
        }

        var name = status.ToString();
        var words = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsAsciiLetterUpper(name[i]))
            {
                words.Append(' ');
            }

            words.Append(name[i]);
        }

        return words.ToString();
    }

    private static bool LooksLikeJson(HttpContent content)
    {
        var mediaType = content.Headers.ContentType?.MediaType;
        return mediaType is null
            || mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    private static TimeSpan? GetRetryAfter(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        if (retryAfter?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[MaxErrorBodyBytes];
            var filled = 0;
            int read;
            while (filled < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false)) > 0)
            {
                filled += read;
            }

            return buffer.AsSpan(0, filled).ToArray();
        }
    }
}
