using System.Text.Json;
using KvFusion.SemanticKernel.Retrieval;
using Microsoft.Extensions.AI;

namespace KvFusion.SemanticKernel.Tests.Chat;

public sealed class KvFusionContentTests
{
    private static readonly string IdA = new('a', 64);

    [Fact]
    public void RetrievedContext_is_a_marked_user_message_with_one_item_per_chunk()
    {
        var message = KvFusionContent.RetrievedContext([("first chunk", IdA), ("second chunk", null)]);

        Assert.Equal(ChatRole.User, message.Role);
        Assert.True(KvFusionContent.IsRetrievedContext(message));
        var chunks = message.Contents.OfType<TextContent>().Where(c => !string.IsNullOrWhiteSpace(c.Text)).ToList();
        Assert.Equal(new[] { "first chunk", "second chunk" }, chunks.Select(c => c.Text));
        Assert.Equal(new string?[] { IdA, null }, chunks.Select(KvFusionContent.ChunkIdOf));
        Assert.Equal("first chunk\n\nsecond chunk", message.Text);
    }

    [Fact]
    public void A_plain_message_is_not_retrieved_context() =>
        Assert.False(KvFusionContent.IsRetrievedContext(new ChatMessage(ChatRole.User, "hello")));

    [Fact]
    public void Marks_survive_a_json_round_trip()
    {
        var message = KvFusionContent.RetrievedContext([("chunk", IdA)]);

        var json = JsonSerializer.Serialize(message, AIJsonUtilities.DefaultOptions);
        var back = JsonSerializer.Deserialize<ChatMessage>(json, AIJsonUtilities.DefaultOptions)!;

        Assert.True(KvFusionContent.IsRetrievedContext(back));
        Assert.Equal(IdA, KvFusionContent.ChunkIdOf(back.Contents.Single()));
    }

    [Fact]
    public void RetrievedContext_refuses_a_malformed_id()
    {
        var e = Assert.Throws<ArgumentException>(() => KvFusionContent.RetrievedContext([("text", "xyz")]));

        Assert.Contains("xyz", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RetrievedContext_refuses_no_chunk_and_empty_text()
    {
        Assert.Throws<ArgumentException>(() => KvFusionContent.RetrievedContext([]));
        Assert.Throws<ArgumentException>(() => KvFusionContent.RetrievedContext([("", IdA)]));
    }
}
