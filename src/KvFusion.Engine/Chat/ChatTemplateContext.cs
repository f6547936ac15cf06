namespace KvFusion.Engine.Chat;

/// <summary>What a render passes to the template besides the messages, as transformers' <c>apply_chat_template</c> does.</summary>
public sealed class ChatTemplateContext
{
    /// <summary>End with the assistant's cue (<c>add_generation_prompt</c>).</summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary><c>bos_token</c>; null takes the template's own (from tokenizer_config.json), else the empty string.</summary>
    public string? BosToken { get; init; }

    /// <summary><c>eos_token</c>; null takes the template's own (from tokenizer_config.json), else the empty string.</summary>
    public string? EosToken { get; init; }

    /// <summary>
    /// More variables (for example <c>date_string</c>, <c>tools</c>). <c>tools</c> and <c>documents</c> are none unless set
    /// here, as transformers passes them.
    /// </summary>
    public IReadOnlyDictionary<string, object?> Variables { get; init; } = new Dictionary<string, object?>();

    /// <summary>The clock <c>strftime_now</c> reads; null reads the local time.</summary>
    public Func<DateTime>? Clock { get; init; }
}
