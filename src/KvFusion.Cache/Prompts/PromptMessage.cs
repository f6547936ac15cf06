using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Prompts;

/// <summary>Who speaks a <see cref="PromptMessage"/>.</summary>
public enum PromptRole
{
    /// <summary>Instructions (system or developer message).</summary>
    System,

    /// <summary>The user.</summary>
    User,

    /// <summary>The model's earlier turns.</summary>
    Assistant,

    /// <summary>A tool's result.</summary>
    Tool,
}

/// <summary>A piece of a message: text, or a chunk whose stored KV cache the fusion reuses.</summary>
public abstract record PromptPart;

/// <summary>Text that is computed as part of the prompt.</summary>
/// <param name="Text">The text.</param>
public sealed record TextPart(string Text) : PromptPart;

/// <summary>A reusable chunk (by id, or text to precompute and store on the way).</summary>
/// <param name="Chunk">The chunk.</param>
public sealed record ChunkPart(ChunkInput Chunk) : PromptPart;

/// <summary>One message of a chat, made of text and chunk parts.</summary>
/// <param name="Role">The speaker.</param>
/// <param name="Parts">The parts, in order.</param>
public sealed record PromptMessage(PromptRole Role, IReadOnlyList<PromptPart> Parts)
{
    /// <summary>A message of text only.</summary>
    public static PromptMessage Text(PromptRole role, string text) => new(role, [new TextPart(text)]);
}
