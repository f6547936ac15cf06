using System.Text.Json;
using KvFusion.Client.Contracts;

namespace KvFusion.Server.Generation;

/// <summary>The shape of one endpoint's answers: whole, or as the events of a stream.</summary>
internal abstract class CompletionFormat(string id, long created, string model)
{
    protected string Id { get; } = id;

    protected long Created { get; } = created;

    protected string Model { get; } = model;

    /// <summary>The first event of a stream (null: none before the first text).</summary>
    public abstract byte[]? Start(FusionUsage fusion);

    /// <summary>An event with new text.</summary>
    public abstract byte[] Delta(string text);

    /// <summary>The event that ends the choice.</summary>
    public abstract byte[] Finish(string reason);

    /// <summary>The usage event (no choices).</summary>
    public abstract byte[] Usage(CompletionUsage usage, FusionUsage fusion);

    /// <summary>The whole answer.</summary>
    public abstract byte[] Whole(string text, string reason, CompletionUsage usage, FusionUsage fusion);
}

/// <summary><c>chat.completion</c> and <c>chat.completion.chunk</c>.</summary>
internal sealed class ChatCompletionFormat(string id, long created, string model) : CompletionFormat(id, created, model)
{
    public override byte[]? Start(FusionUsage fusion) => Chunk([new ChatChunkChoice { Delta = new ChatDelta { Role = "assistant", Content = "" } }], null, fusion);

    public override byte[] Delta(string text) => Chunk([new ChatChunkChoice { Delta = new ChatDelta { Content = text } }], null, null);

    public override byte[] Finish(string reason) => Chunk([new ChatChunkChoice { Delta = new ChatDelta(), FinishReason = reason }], null, null);

    public override byte[] Usage(CompletionUsage usage, FusionUsage fusion) => Chunk([], usage, fusion);

    public override byte[] Whole(string text, string reason, CompletionUsage usage, FusionUsage fusion) => JsonSerializer.SerializeToUtf8Bytes(
        new ChatCompletion
        {
            Id = Id,
            Created = Created,
            Model = Model,
            Choices = [new ChatChoice { Message = new ChatMessageResult { Content = text }, FinishReason = reason }],
            Usage = usage,
            Kvfusion = fusion,
        },
        KvFusionJsonContext.Default.ChatCompletion);

    private byte[] Chunk(IReadOnlyList<ChatChunkChoice> choices, CompletionUsage? usage, FusionUsage? fusion) => JsonSerializer.SerializeToUtf8Bytes(
        new ChatCompletionChunk { Id = Id, Created = Created, Model = Model, Choices = choices, Usage = usage, Kvfusion = fusion },
        KvFusionJsonContext.Default.ChatCompletionChunk);
}

/// <summary><c>text_completion</c>, whole and streamed.</summary>
internal sealed class TextCompletionFormat(string id, long created, string model) : CompletionFormat(id, created, model)
{
    public override byte[]? Start(FusionUsage fusion) => null;

    public override byte[] Delta(string text) => Serialize([new CompletionChoice { Text = text }], null, null);

    public override byte[] Finish(string reason) => Serialize([new CompletionChoice { Text = "", FinishReason = reason }], null, null);

    public override byte[] Usage(CompletionUsage usage, FusionUsage fusion) => Serialize([], usage, fusion);

    public override byte[] Whole(string text, string reason, CompletionUsage usage, FusionUsage fusion) =>
        Serialize([new CompletionChoice { Text = text, FinishReason = reason }], usage, fusion);

    private byte[] Serialize(IReadOnlyList<CompletionChoice> choices, CompletionUsage? usage, FusionUsage? fusion) => JsonSerializer.SerializeToUtf8Bytes(
        new Completion { Id = Id, Created = Created, Model = Model, Choices = choices, Usage = usage, Kvfusion = fusion },
        KvFusionJsonContext.Default.Completion);
}
