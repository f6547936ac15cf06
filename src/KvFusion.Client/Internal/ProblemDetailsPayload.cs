using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvFusion.Client.Internal;

/// <summary>The members of an RFC 9457 problem details object that the client reads.</summary>
internal sealed record ProblemDetailsPayload
{
    /// <summary>A URI naming the problem type.</summary>
    public string? Type { get; init; }

    /// <summary>A short summary of the problem type.</summary>
    public string? Title { get; init; }

    /// <summary>The HTTP status code.</summary>
    public int? Status { get; init; }

    /// <summary>What went wrong this time.</summary>
    public string? Detail { get; init; }

    /// <summary>Whether it has any member a problem details object is recognised by.</summary>
    [JsonIgnore]
    public bool IsProblem => Type is not null || Title is not null || Status is not null || Detail is not null;

    /// <summary>Parses a problem details object; null when the text is not a JSON object.</summary>
    public static ProblemDetailsPayload? TryParse(ReadOnlySpan<byte> utf8Json)
    {
        try
        {
            var problem = JsonSerializer.Deserialize(utf8Json, ClientJsonContext.Default.ProblemDetailsPayload);
            return problem is { IsProblem: true } ? problem : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Source-generated JSON for the types only the client reads (problem details).</summary>
[JsonSourceGenerationOptions(
    PropertyNameCaseInsensitive = true,
    NumberHandling = JsonNumberHandling.AllowReadingFromString,
    GenerationMode = JsonSourceGenerationMode.Metadata)]
[JsonSerializable(typeof(ProblemDetailsPayload))]
internal sealed partial class ClientJsonContext : JsonSerializerContext;
