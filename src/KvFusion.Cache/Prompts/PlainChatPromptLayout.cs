using System.Text;
using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Prompts;

/// <summary>
/// The plain format for models without a chat template: system messages joined by a blank line are the prefix, every
/// chunk part follows in order, and the conversation is the query, one <c>User: …</c>, <c>Assistant: …</c> or
/// <c>Tool: …</c> line per message, ending with <c>Assistant:</c>.
/// </summary>
public sealed class PlainChatPromptLayout : ChatPromptLayout
{
    internal PlainChatPromptLayout()
    {
    }

    /// <inheritdoc />
    public override FusionPrompt Lay(IReadOnlyList<PromptMessage> messages)
    {
        var chunks = ChunksOf(messages);
        var system = new StringBuilder();
        var query = new StringBuilder();
        var spoken = false;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            var text = TextOf(message);
            switch (message.Role)
            {
                case PromptRole.System:
                    if (system.Length > 0)
                    {
                        system.Append("\n\n");
                    }

                    system.Append(text);
                    break;
                case PromptRole.User or PromptRole.Assistant or PromptRole.Tool:
                    spoken |= message.Role == PromptRole.User && (text.Length > 0 || HasChunk(message));
                    query.Append(Tag(message.Role)).Append(": ").Append(text).Append('\n');
                    break;
                default:
                    throw new ArgumentException($"Message {i} has an unknown role ({(int)message.Role}).", nameof(messages));
            }
        }

        if (!spoken)
        {
            throw new ArgumentException("The chat must include a user message with content.", nameof(messages));
        }

        query.Append("Assistant:");
        return new FusionPrompt(system.Length > 0 ? system.ToString() : null, chunks, query.ToString());
    }

    private static bool HasChunk(PromptMessage message)
    {
        foreach (var part in message.Parts)
        {
            if (part is ChunkPart)
            {
                return true;
            }
        }

        return false;
    }

    private static string Tag(PromptRole role) => role switch
    {
        PromptRole.User => "User",
        PromptRole.Assistant => "Assistant",
        _ => "Tool",
    };
}
