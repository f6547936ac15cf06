namespace KvFusion.Engine.Chat;

/// <summary>One message as a chat template sees it: <c>message.role</c>, <c>message.content</c> and any extra fields.</summary>
/// <param name="Role">The role (<c>system</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>...).</param>
/// <param name="Content">The text content.</param>
public sealed record ChatTemplateMessage(string Role, string Content)
{
    /// <summary>More fields of the message dict (for example <c>tool_calls</c>); strings, numbers, bools, lists and dictionaries.</summary>
    public IReadOnlyDictionary<string, object?>? Extra { get; init; }
}
