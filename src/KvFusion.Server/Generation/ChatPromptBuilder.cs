using System.Runtime.CompilerServices;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Prompts;
using KvFusion.Client.Contracts;
using KvFusion.Engine.Transformer;
using KvFusion.Server.Errors;

namespace KvFusion.Server.Generation;

/// <summary>
/// Lays a chat out as the fusion's segments through <see cref="ChatPromptLayout.ForModel"/>: the model's own chat
/// template when its directory has one, else the plain role-tagged format. System (and developer) messages are system
/// text; the request's stored chunks go at the start of the first user message (right after the system prompt in the
/// plain format), and the query ends with the assistant's cue.
/// </summary>
internal static class ChatPromptBuilder
{
    // One layout per loaded model: the template is parsed once, not per request.
    private static readonly ConditionalWeakTable<TransformerModel, ChatPromptLayout> Layouts = [];

    // The chunks themselves come from the request's kvfusion object; this part only marks where they go.
    private static readonly ChunkPart ChunkPlace = new(ChunkInput.FromText("chunks"));

    /// <summary>The prefix (or null) and the query of <paramref name="messages"/> for <paramref name="model"/>.</summary>
    public static (string? Prefix, string Query) Build(IReadOnlyList<ChatMessage> messages, int maxMessages, TransformerModel model, bool hasChunks)
    {
        if (messages is not { Count: > 0 })
        {
            throw ApiProblemException.BadRequest("messages must hold at least one message.");
        }

        if (messages.Count > maxMessages)
        {
            throw ApiProblemException.BadRequest($"messages holds {messages.Count} messages; at most {maxMessages} are accepted.");
        }

        var prompt = new List<PromptMessage>(messages.Count);
        var chunksPlaced = !hasChunks;
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw ApiProblemException.BadRequest($"messages[{i}] is null.");
            var role = m.Role switch
            {
                "system" or "developer" => PromptRole.System,
                "user" => PromptRole.User,
                "assistant" => PromptRole.Assistant,
                "tool" => PromptRole.Tool,
                _ => throw ApiProblemException.BadRequest($"messages[{i}].role '{m.Role}' is not one of system, developer, user, assistant, tool."),
            };
            var content = m.Content ?? "";
            if (!chunksPlaced && role == PromptRole.User && content.Length > 0)
            {
                prompt.Add(new PromptMessage(role, [ChunkPlace, new TextPart(content)]));
                chunksPlaced = true;
            }
            else
            {
                prompt.Add(PromptMessage.Text(role, content));
            }
        }

        var layout = Layouts.GetValue(model, ChatPromptLayout.ForModel);
        FusionPrompt laid;
        try
        {
            laid = layout.Lay(prompt);
        }
        catch (ArgumentException e)
        {
            throw ApiProblemException.BadRequest(e.Message.Replace(" (Parameter 'messages')", "", StringComparison.Ordinal));
        }

        return (laid.Prefix, laid.Query);
    }
}
