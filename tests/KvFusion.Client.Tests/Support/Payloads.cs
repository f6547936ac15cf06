namespace KvFusion.Client.Tests.Support;

/// <summary>Wire payloads as the service writes them (snake_case JSON).</summary>
internal static class Payloads
{
    public const string ChunkId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    public static string ChatChunk(string content, string? finish = null, string? role = null) =>
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"tiny-pydocs\",\"choices\":[{\"index\":0,\"delta\":{"
        + (role is null ? "" : $"\"role\":\"{role}\",")
        + $"\"content\":\"{content}\"}},\"finish_reason\":{(finish is null ? "null" : $"\"{finish}\"")}}}]}}";

    public static string TextChunk(string text, string? finish = null) =>
        "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\"tiny-pydocs\",\"choices\":[{\"index\":0,"
        + $"\"text\":\"{text}\",\"finish_reason\":{(finish is null ? "null" : $"\"{finish}\"")}}}]}}";

    public static string Chunk(string id = ChunkId, bool created = true) =>
        $"{{\"id\":\"{id}\",\"tokens\":12,\"bytes\":4096,\"codec\":\"raw\",\"model\":\"tiny-pydocs\",\"created\":{(created ? "true" : "false")}}}";

    public static string Progress(int done, int total, int computed) =>
        $"{{\"done\":{done},\"total\":{total},\"computed\":{computed}}}";

    public static string Document(string id = ChunkId) =>
        $"{{\"id\":\"{id}\",\"name\":\"doc\",\"tokens\":12,\"chunks\":[{Chunk()}]}}";

    /// <summary>A whole chat completion whose kvfusion object carries a saved conversation's id.</summary>
    public static string ChatCompletion(string conversationId = ChunkId) =>
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"tiny-pydocs-coder\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
        + "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":2}},"
        + $"\"kvfusion\":{{\"mode\":\"share:0-3\",\"reused_tokens\":2,\"recomputed_tokens\":1,\"ttft_ms\":1.5,\"conversation_id\":\"{conversationId}\"}}}}";

    public const string ReadyReport = "{\"status\":\"ready\",\"model\":\"tiny-pydocs\",\"tiers\":[{\"name\":\"memory\",\"up\":true,\"pending_writes\":0}]}";

    public const string NotReadyReport = "{\"status\":\"not ready\",\"tiers\":[{\"name\":\"redis\",\"up\":false,\"pending_writes\":3}]}";
}
