using System.Globalization;
using System.Text;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Chat;

namespace KvFusion.Cache.Prompts;

/// <summary>
/// Lays a chat out with the model's own chat template. The conversation is rendered with a sentinel string in place of
/// each chunk part (a message's chunks go at the start of its content), and the text is split at the sentinels: what
/// precedes the first chunk is the prefix, the chunks follow in order, what follows the last is the query (ending with
/// the template's assistant cue). Chunk parts must be adjacent in the rendered text. See docs/chat-templates.md.
/// </summary>
public sealed class TemplateChatPromptLayout : ChatPromptLayout
{
    // Private-use characters: no real text or template writes them, so a sentinel cannot collide with content.
    private const string SentinelOpen = "\uE000kvfusion-chunk-";
    private const char SentinelClose = '\uE001';
    private const string Boundary = "\uE000kvfusion-boundary\uE001";

    private readonly TemplateChatPromptLayoutOptions _options;

    internal TemplateChatPromptLayout(ChatTemplate template, TemplateChatPromptLayoutOptions options)
    {
        Template = template;
        _options = options;
    }

    /// <summary>The template.</summary>
    public ChatTemplate Template { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">
    /// No user message with content, chunks the template would separate with text or drop, or the template's own refusal
    /// (its <c>raise_exception</c> message, for example roles that do not alternate).
    /// </exception>
    public override FusionPrompt Lay(IReadOnlyList<PromptMessage> messages)
    {
        var chunks = ChunksOf(messages);
        var rendered = new List<ChatTemplateMessage>(messages.Count);
        var spoken = false;
        var chunkIndex = 0;
        var boundaryAt = chunks.Count == 0 ? FirstConversationMessage(messages) : -1;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            var content = new StringBuilder();
            if (i == boundaryAt)
            {
                content.Append(Boundary);
            }

            var hasChunk = false;
            foreach (var part in message.Parts)
            {
                if (part is ChunkPart)
                {
                    content.Append(SentinelOpen).Append(chunkIndex++.ToString(CultureInfo.InvariantCulture)).Append(SentinelClose);
                    hasChunk = true;
                }
            }

            var text = TextOf(message);
            content.Append(text);
            spoken |= message.Role == PromptRole.User && (text.Length > 0 || hasChunk);
            rendered.Add(new ChatTemplateMessage(RoleName(message.Role, i), content.ToString()));
        }

        if (!spoken)
        {
            throw new ArgumentException("The chat must include a user message with content.", nameof(messages));
        }

        string output;
        try
        {
            output = Template.Render(rendered, new ChatTemplateContext
            {
                AddGenerationPrompt = true,
                BosToken = _options.BosToken,
                EosToken = _options.EosToken,
                Variables = _options.Variables,
                Clock = _options.Clock,
            });
        }
        catch (ChatTemplateException e)
        {
            throw new ArgumentException($"The model's chat template refused the chat: {e.Message}", nameof(messages), e);
        }

        output = WithoutLeadingBos(output);
        return chunks.Count == 0 ? SplitAtBoundary(output) : Split(output, chunks);
    }

    /// <summary>Without chunks, the prefix ends where the first non-system message's content begins, so prefix reuse still applies.</summary>
    private static FusionPrompt SplitAtBoundary(string output)
    {
        var at = output.IndexOf(Boundary, StringComparison.Ordinal);
        if (at < 0 || output.IndexOf(Boundary, at + 1, StringComparison.Ordinal) >= 0)
        {
            return new FusionPrompt(null, [], output.Replace(Boundary, "", StringComparison.Ordinal));
        }

        return new FusionPrompt(at > 0 ? output[..at] : null, [], output[(at + Boundary.Length)..]);
    }

    private static int FirstConversationMessage(IReadOnlyList<PromptMessage> messages)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != PromptRole.System)
            {
                return i;
            }
        }

        return -1;
    }

    private string WithoutLeadingBos(string output)
    {
        var bos = _options.BosToken ?? Template.BosToken;
        return _options.TokenizerAddsBos && !string.IsNullOrEmpty(bos) && output.StartsWith(bos, StringComparison.Ordinal)
            ? output[bos.Length..]
            : output;
    }

    private static FusionPrompt Split(string output, List<ChunkInput> chunks)
    {
        var first = Find(output, 0);
        var position = first;
        for (var i = 0; i < chunks.Count; i++)
        {
            var sentinel = Sentinel(i);
            if (string.CompareOrdinal(output, position, sentinel, 0, sentinel.Length) != 0)
            {
                throw Find(output, 0, i) < 0
                    ? new ArgumentException($"The model's chat template dropped chunk {i} (its message does not appear in the prompt).")
                    : new ArgumentException(
                        $"Chunk {i} does not follow chunk {i - 1} directly in the templated prompt: chunk parts must be adjacent (put them in one message).");
            }

            position += sentinel.Length;
        }

        if (output.IndexOf(SentinelOpen, position, StringComparison.Ordinal) >= 0 || output.IndexOf(SentinelOpen, 0, first, StringComparison.Ordinal) >= 0)
        {
            throw new ArgumentException("The model's chat template repeated a chunk; a chunk can be placed only once.");
        }

        var prefix = output[..first];
        return new FusionPrompt(prefix.Length > 0 ? prefix : null, chunks, output[position..]);
    }

    private static int Find(string output, int from, int index = 0) =>
        output.IndexOf(Sentinel(index), from, StringComparison.Ordinal) is var at && at >= 0 ? at
        : index == 0 ? throw new ArgumentException("The model's chat template dropped the chunks (their message does not appear in the prompt).")
        : -1;

    private static string Sentinel(int i) => SentinelOpen + i.ToString(CultureInfo.InvariantCulture) + SentinelClose;

    private static string RoleName(PromptRole role, int index) => role switch
    {
        PromptRole.System => "system",
        PromptRole.User => "user",
        PromptRole.Assistant => "assistant",
        PromptRole.Tool => "tool",
        _ => throw new ArgumentException($"Message {index} has an unknown role ({(int)role})."),
    };
}
