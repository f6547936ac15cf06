namespace KvFusion.Server.Errors;

/// <summary>
/// A request the service refuses, with the HTTP status and the text the client sees as ProblemDetails. Messages never
/// name files, hosts or internals.
/// </summary>
public sealed class ApiProblemException : Exception
{
    /// <summary>Creates the problem.</summary>
    public ApiProblemException(int status, string title, string detail, string code)
        : base(detail)
    {
        Status = status;
        Title = title;
        Code = code;
    }

    /// <summary>Creates a 400 problem.</summary>
    public ApiProblemException() : this(400, "Bad request", "The request is invalid.", "invalid_request") { }

    /// <summary>Creates a 400 problem.</summary>
    public ApiProblemException(string message) : this(400, "Bad request", message, "invalid_request") { }

    /// <summary>Creates a 400 problem.</summary>
    public ApiProblemException(string message, Exception innerException) : base(message, innerException)
    {
        Status = 400;
        Title = "Bad request";
        Code = "invalid_request";
    }

    /// <summary>The HTTP status.</summary>
    public int Status { get; }

    /// <summary>The short title.</summary>
    public string Title { get; }

    /// <summary>A stable machine-readable code (also OpenAI's <c>error.code</c>).</summary>
    public string Code { get; }

    /// <summary>How long a client should wait before retrying (429, 503).</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>400: the request is malformed.</summary>
    public static ApiProblemException BadRequest(string detail) => new(400, "Bad request", detail, "invalid_request");

    /// <summary>404: the resource is unknown (or belongs to another tenant: the same answer).</summary>
    public static ApiProblemException NotFound(string detail) => new(404, "Not found", detail, "not_found");

    /// <summary>413: the body is too large.</summary>
    public static ApiProblemException TooLarge(string detail) => new(413, "Payload too large", detail, "payload_too_large");

    /// <summary>422: the body is well-formed but cannot be accepted (a corrupt or mismatched cache).</summary>
    public static ApiProblemException Unprocessable(string detail) => new(422, "Unprocessable cache", detail, "invalid_cache");

    /// <summary>403: the key may not do this.</summary>
    public static ApiProblemException Forbidden(string detail) => new(403, "Forbidden", detail, "forbidden");
}
