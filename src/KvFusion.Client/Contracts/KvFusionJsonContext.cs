using System.Text.Json.Serialization;

namespace KvFusion.Client.Contracts;

/// <summary>
/// Source-generated JSON for every wire type, in OpenAI's snake_case with nulls left out: the client and the server
/// serialize through this one context, so they cannot disagree on a name.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    AllowTrailingCommas = false,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(CreateChunksRequest))]
[JsonSerializable(typeof(CreateChunksResponse))]
[JsonSerializable(typeof(ChunkInfo))]
[JsonSerializable(typeof(PinChunkRequest))]
[JsonSerializable(typeof(CreateDocumentRequest))]
[JsonSerializable(typeof(DocumentInfo))]
[JsonSerializable(typeof(DocumentProgress))]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(Completion))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ReadinessReport))]
public sealed partial class KvFusionJsonContext : JsonSerializerContext;
