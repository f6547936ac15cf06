using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>How both chat clients shape usage, responses and updates, so the report is found in the same places.</summary>
internal static class ChatResponses
{
    /// <summary>The provider name of <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "kvfusion";

    /// <summary>Usage of a call: cached input tokens are the reused ones, counted inside the input tokens.</summary>
    public static UsageDetails Usage(KvFusionReport report) => new()
    {
        InputTokenCount = report.PrefillTokens,
        CachedInputTokenCount = report.ReusedTokens,
        OutputTokenCount = report.OutputTokens,
        TotalTokenCount = report.PrefillTokens + report.OutputTokens,
        AdditionalCounts = new AdditionalPropertiesDictionary<long> { [KvFusionReport.RecomputedTokensCount] = report.RecomputedTokens },
    };

    /// <summary>The whole response: the report on the response and on its message (SK keeps only the message's).</summary>
    public static ChatResponse Response(string text, ChatFinishReason finish, KvFusionReport report, object raw, string? modelId, string responseId, DateTimeOffset created)
    {
        var message = new ChatMessage(ChatRole.Assistant, text)
        {
            MessageId = responseId,
            CreatedAt = created,
            RawRepresentation = raw,
            AdditionalProperties = Properties(report),
        };
        return new ChatResponse(message)
        {
            ResponseId = responseId,
            ModelId = modelId,
            CreatedAt = created,
            FinishReason = finish,
            Usage = Usage(report),
            RawRepresentation = raw,
            AdditionalProperties = Properties(report),
        };
    }

    /// <summary>A streaming update with new text.</summary>
    public static ChatResponseUpdate Text(string text, object? raw, string? modelId, string responseId, DateTimeOffset created) => new(ChatRole.Assistant, text)
    {
        ResponseId = responseId,
        MessageId = responseId,
        ModelId = modelId,
        CreatedAt = created,
        RawRepresentation = raw,
    };

    /// <summary>The last streaming update: finish reason, usage content and the report.</summary>
    public static ChatResponseUpdate Final(ChatFinishReason finish, KvFusionReport report, object raw, string? modelId, string responseId, DateTimeOffset created) =>
        new(ChatRole.Assistant, [new UsageContent(Usage(report))])
        {
            ResponseId = responseId,
            MessageId = responseId,
            ModelId = modelId,
            CreatedAt = created,
            FinishReason = finish,
            RawRepresentation = raw,
            AdditionalProperties = Properties(report),
        };

    /// <summary>A fresh response id.</summary>
    public static string NewResponseId() => "chatcmpl-" + Guid.NewGuid().ToString("N");

    private static AdditionalPropertiesDictionary Properties(KvFusionReport report) => new() { [KvFusionReport.PropertyName] = report };
}
