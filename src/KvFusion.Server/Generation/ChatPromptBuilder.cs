using System.Text;
using KvFusion.Client.Contracts;
using KvFusion.Server.Errors;

namespace KvFusion.Server.Generation;

/// <summary>
/// Lays a chat out as the fusion's segments: system (and developer) messages become the prefix, the stored chunks
/// follow, and the conversation is the query, in a plain role-tagged format ending with the assistant's cue. Chat
/// templates from tokenizer_config.json are the next issue's; this layout is what every model can read.
/// </summary>
internal static class ChatPromptBuilder
{
    /// <summary>The prefix (system text, or null) and the query of <paramref name="messages"/>.</summary>
    public static (string? Prefix, string Query) Build(IReadOnlyList<ChatMessage> messages, int maxMessages)
    {
        if (messages is not { Count: > 0 })
        {
            throw ApiProblemException.BadRequest("messages must hold at least one message.");
        }

        if (messages.Count > maxMessages)
        {
            throw ApiProblemException.BadRequest($"messages holds {messages.Count} messages; at most {maxMessages} are accepted.");
        }

        var system = new StringBuilder();
        var query = new StringBuilder();
        var spoken = false;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw ApiProblemException.BadRequest($"messages[{i}] is null.");
            var content = m.Content ?? "";
            switch (m.Role)
            {
                case "system" or "developer":
                    if (system.Length > 0)
                    {
                        system.Append("\n\n");
                    }

                    system.Append(content);
                    break;
                case "user" or "assistant" or "tool":
                    if (m.Role == "user" && content.Length > 0)
                    {
                        spoken = true;
                    }

                    query.Append(Tag(m.Role)).Append(": ").Append(content).Append('\n');
                    break;
                default:
                    throw ApiProblemException.BadRequest($"messages[{i}].role '{m.Role}' is not one of system, developer, user, assistant, tool.");
            }
        }

        if (!spoken)
        {
            throw ApiProblemException.BadRequest("messages must include a user message with content.");
        }

        query.Append("Assistant:");
        return (system.Length > 0 ? system.ToString() : null, query.ToString());
    }

    private static string Tag(string role) => role switch
    {
        "user" => "User",
        "assistant" => "Assistant",
        _ => "Tool",
    };
}
