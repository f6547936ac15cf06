using System.Text.Json;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Prompts;
using KvFusion.SemanticKernel.Retrieval;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Chat;

/// <summary>
/// Reads Microsoft.Extensions.AI messages as prompt messages: text stays text; chunks (items of a retrieved-context
/// message, any item carrying a chunk id, and marked chunks inside text) become chunk parts holding the id when known and
/// the text when known, for the client to decide which of the two the fusion uses.
/// </summary>
internal static class ChatTranscriptReader
{
    /// <summary>The prompt messages of a call; <see cref="ChatOptions.Instructions"/> come first as a system message.</summary>
    /// <exception cref="ArgumentException">A null message, an unknown role, a malformed chunk id or content the model cannot read.</exception>
    public static List<PromptMessage> Read(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var read = new List<PromptMessage>();
        if (!string.IsNullOrEmpty(options?.Instructions))
        {
            read.Add(PromptMessage.Text(PromptRole.System, options.Instructions));
        }

        var index = 0;
        foreach (var message in messages)
        {
            if (message is null)
            {
                throw Invalid($"Message {index} is null.");
            }

            read.Add(new PromptMessage(RoleOf(message.Role, index), PartsOf(message, index)));
            index++;
        }

        return read;
    }

    private static PromptRole RoleOf(ChatRole role, int index)
    {
        if (role == ChatRole.System || string.Equals(role.Value, "developer", StringComparison.OrdinalIgnoreCase))
        {
            return PromptRole.System;
        }

        if (role == ChatRole.User)
        {
            return PromptRole.User;
        }

        if (role == ChatRole.Assistant)
        {
            return PromptRole.Assistant;
        }

        return role == ChatRole.Tool
            ? PromptRole.Tool
            : throw Invalid($"Message {index} has the role '{role.Value}', not one of system, developer, user, assistant, tool.");
    }

    private static List<PromptPart> PartsOf(ChatMessage message, int index)
    {
        var retrieved = KvFusionContent.IsRetrievedContext(message);
        var parts = new List<PromptPart>();
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent text when KvFusionContent.ChunkIdOf(text) is { } id:
                    parts.Add(new ChunkPart(new ChunkInput { Id = ParseId(id, index), Text = string.IsNullOrEmpty(text.Text) ? null : text.Text }));
                    break;
                case TextContent text when retrieved:
                    // Separators between the chunks are layout for other providers, not chunks.
                    if (!string.IsNullOrWhiteSpace(text.Text))
                    {
                        parts.Add(new ChunkPart(ChunkInput.FromText(text.Text)));
                    }

                    break;
                case TextContent text:
                    AddMarkedText(parts, text.Text ?? "", index);
                    break;
                case FunctionResultContent result:
                    parts.Add(new TextPart(ResultText(result.Result)));
                    break;
                case TextReasoningContent or UsageContent or FunctionCallContent:
                    // Nothing the model reads: reasoning and calls are the model's own, usage is bookkeeping.
                    break;
                case null:
                    throw Invalid($"Message {index} holds a null content item.");
                default:
                    throw Invalid($"Message {index} holds {content.GetType().Name}; the KvFusion chat clients read text (and function results) only.");
            }
        }

        return parts;
    }

    private static void AddMarkedText(List<PromptPart> parts, string text, int index)
    {
        foreach (var segment in KvFusionChunkMarkers.Split(text))
        {
            if (!segment.IsChunk)
            {
                parts.Add(new TextPart(segment.Text));
            }
            else if (segment.ChunkId is { } id)
            {
                parts.Add(new ChunkPart(new ChunkInput { Id = ParseId(id, index), Text = segment.Text.Length > 0 ? segment.Text : null }));
            }
            else if (segment.Text.Length > 0)
            {
                parts.Add(new ChunkPart(ChunkInput.FromText(segment.Text)));
            }
        }
    }

    private static ChunkId ParseId(string id, int index) => ChunkId.TryParse(id, out var parsed)
        ? parsed
        : throw Invalid($"Message {index} names the chunk id '{Clip(id)}', which is not {ChunkId.HexLength} hex characters.");

    private static string ResultText(object? result) => result switch
    {
        null => "",
        string s => s,
        JsonElement e => e.ValueKind == JsonValueKind.String ? e.GetString() ?? "" : e.GetRawText(),
        _ => JsonSerializer.Serialize(result, AIJsonUtilities.DefaultOptions.GetTypeInfo(result.GetType())),
    };

    private static ArgumentException Invalid(string message, string paramName = "messages") => new(message, paramName);

    private static string Clip(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
