using KvFusion.Cache.Fusion;
using KvFusion.Cache.Prompts;

namespace KvFusion.Cache.Tests.Prompts;

public sealed class PlainChatPromptLayoutTests
{
    [Fact]
    public void System_messages_are_the_prefix_and_the_conversation_is_the_query()
    {
        var prompt = ChatPromptLayout.Plain.Lay(
        [
            PromptMessage.Text(PromptRole.System, "Be brief."),
            PromptMessage.Text(PromptRole.System, "Cite the docs."),
            PromptMessage.Text(PromptRole.User, "What is json?"),
            PromptMessage.Text(PromptRole.Assistant, "A module."),
            PromptMessage.Text(PromptRole.Tool, "42"),
            PromptMessage.Text(PromptRole.User, "More?"),
        ]);

        Assert.Equal("Be brief.\n\nCite the docs.", prompt.Prefix);
        Assert.Empty(prompt.Chunks);
        Assert.Equal("User: What is json?\nAssistant: A module.\nTool: 42\nUser: More?\nAssistant:", prompt.Query);
    }

    [Fact]
    public void Chunk_parts_become_the_fusion_chunks_in_order_and_leave_the_text()
    {
        var a = ChunkInput.FromText("alpha");
        var b = ChunkInput.FromText("beta");
        var prompt = ChatPromptLayout.Plain.Lay(
        [
            new PromptMessage(PromptRole.User, [new ChunkPart(a), new ChunkPart(b), new TextPart("Which?")]),
        ]);

        Assert.Null(prompt.Prefix);
        Assert.Equal([a, b], prompt.Chunks);
        Assert.Equal("User: Which?\nAssistant:", prompt.Query);
    }

    [Fact]
    public void The_request_carries_the_segments_mode_and_reserve()
    {
        var prompt = new FusionPrompt("sys", [ChunkInput.FromText("c")], "User: q\nAssistant:");

        var request = prompt.ToRequest(FusionMode.Blend, new BlendOptions { Ratio = 0.3 }, reserveTokens: 32);

        Assert.Equal("sys", request.Prefix);
        Assert.Single(request.Chunks);
        Assert.Equal("User: q\nAssistant:", request.Query);
        Assert.Equal(FusionMode.Blend, request.Mode);
        Assert.Equal(0.3, request.Blend.Ratio);
        Assert.Equal(32, request.ReserveTokens);
    }

    [Fact]
    public void A_chat_without_a_user_message_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => ChatPromptLayout.Plain.Lay([PromptMessage.Text(PromptRole.System, "only rules")]));
        Assert.Contains("user message", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ChatPromptLayout.Plain.Lay([]));
        Assert.Throws<ArgumentException>(() => ChatPromptLayout.Plain.Lay([PromptMessage.Text(PromptRole.User, "")]));
    }

    [Fact]
    public void Malformed_parts_are_refused_with_the_message_index()
    {
        var error = Assert.Throws<ArgumentException>(() => ChatPromptLayout.Plain.Lay(
        [
            PromptMessage.Text(PromptRole.User, "ok"),
            new PromptMessage(PromptRole.User, [new TextPart(null!)]),
        ]));
        Assert.Contains("Message 1", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ChatPromptLayout.Plain.Lay([new PromptMessage((PromptRole)9, [new TextPart("x")])]));
    }
}
