using KvFusion.Cache.Fusion;
using KvFusion.Engine.Chat;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Prompts;

/// <summary>Turns a chat into a <see cref="FusionPrompt"/>: which text is the prefix, where the chunks go, and the query.</summary>
public abstract class ChatPromptLayout
{
    /// <summary>The plain role-tagged format for models without a chat template (see <see cref="PlainChatPromptLayout"/>).</summary>
    public static ChatPromptLayout Plain { get; } = new PlainChatPromptLayout();

    /// <summary>
    /// The layout a model's prompts use: its chat template (chat_template.jinja or tokenizer_config.json's
    /// <c>chat_template</c> in the model directory) when it has one, otherwise <see cref="Plain"/>. The template's BOS text
    /// is left out when the model's tokenizer adds BOS itself.
    /// </summary>
    /// <exception cref="ChatTemplateException">The model's template uses a construct the interpreter does not support, or its configuration is malformed.</exception>
    public static ChatPromptLayout ForModel(TransformerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var template = ChatTemplate.TryFromModelDirectory(model.Directory);
        if (template is null)
        {
            return Plain;
        }

        return ForTemplate(template, new TemplateChatPromptLayoutOptions { TokenizerAddsBos = TokenizerAddsBos(model) });
    }

    /// <summary>The layout of <paramref name="template"/> (see <see cref="TemplateChatPromptLayout"/>).</summary>
    public static TemplateChatPromptLayout ForTemplate(ChatTemplate template, TemplateChatPromptLayoutOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        return new TemplateChatPromptLayout(template, options ?? new TemplateChatPromptLayoutOptions());
    }

    private static bool TokenizerAddsBos(TransformerModel model)
    {
        if (model.Tokenizer is not { } tokenizer || model.Config.BosTokenId is not { } bos)
        {
            return false;
        }

        var ids = tokenizer.Encode("a");
        return ids.Length > 1 && ids[0] == bos;
    }

    /// <summary>Lays out <paramref name="messages"/>.</summary>
    /// <exception cref="ArgumentException">No message, no user message with content, or a malformed message.</exception>
    public abstract FusionPrompt Lay(IReadOnlyList<PromptMessage> messages);

    /// <summary>The chunk parts of <paramref name="messages"/> in order, checking each message on the way.</summary>
    protected static List<ChunkInput> ChunksOf(IReadOnlyList<PromptMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            throw new ArgumentException("The chat holds no message.", nameof(messages));
        }

        var chunks = new List<ChunkInput>();
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ArgumentException($"Message {i} is null.", nameof(messages));
            if (message.Parts is null)
            {
                throw new ArgumentException($"Message {i} has no parts list.", nameof(messages));
            }

            foreach (var part in message.Parts)
            {
                switch (part)
                {
                    case ChunkPart { Chunk: { } chunk }:
                        chunks.Add(chunk);
                        break;
                    case ChunkPart:
                        throw new ArgumentException($"Message {i} holds a chunk part without a chunk.", nameof(messages));
                    case TextPart { Text: not null }:
                        break;
                    default:
                        throw new ArgumentException($"Message {i} holds a null part or a text part without text.", nameof(messages));
                }
            }
        }

        return chunks;
    }

    /// <summary>The concatenated text parts of a message.</summary>
    protected static string TextOf(PromptMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Parts.Count == 1 && message.Parts[0] is TextPart only)
        {
            return only.Text;
        }

        var text = new System.Text.StringBuilder();
        foreach (var part in message.Parts)
        {
            if (part is TextPart t)
            {
                text.Append(t.Text);
            }
        }

        return text.ToString();
    }
}
