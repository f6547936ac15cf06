namespace KvFusion.Cache.Prompts;

/// <summary>Settings of a <see cref="TemplateChatPromptLayout"/>.</summary>
public sealed class TemplateChatPromptLayoutOptions
{
    /// <summary><c>bos_token</c> for the template; null takes the template's own (from tokenizer_config.json).</summary>
    public string? BosToken { get; init; }

    /// <summary><c>eos_token</c> for the template; null takes the template's own.</summary>
    public string? EosToken { get; init; }

    /// <summary>
    /// The tokenizer adds BOS itself when it encodes the prefix: the BOS text the template writes at the start is then
    /// left out, so the prompt does not begin with two BOS tokens.
    /// </summary>
    public bool TokenizerAddsBos { get; init; }

    /// <summary>More template variables (for example <c>date_string</c>).</summary>
    public IReadOnlyDictionary<string, object?> Variables { get; init; } = new Dictionary<string, object?>();

    /// <summary>The clock <c>strftime_now</c> reads; null reads the local time.</summary>
    public Func<DateTime>? Clock { get; init; }
}
