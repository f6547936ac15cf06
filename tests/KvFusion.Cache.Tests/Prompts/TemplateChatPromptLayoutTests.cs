using KvFusion.Cache.Fusion;
using KvFusion.Cache.Prompts;
using KvFusion.Engine.Chat;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Tests.Prompts;

/// <summary>The template layout on the real chat templates of tests/data/chat-templates.</summary>
public sealed class TemplateChatPromptLayoutTests
{
    private static readonly Dictionary<string, object?> FixedDate = new() { ["date_string"] = "26 Jul 2024" };

    private static ChatTemplate Load(string file) =>
        ChatTemplate.Parse(File.ReadAllText(RepositoryRoot.Combine("tests", "data", "chat-templates", file)));

    private static TemplateChatPromptLayout Layout(string file, string? bos = null, string? eos = null, bool tokenizerAddsBos = false) =>
        ChatPromptLayout.ForTemplate(Load(file), new TemplateChatPromptLayoutOptions
        {
            BosToken = bos,
            EosToken = eos,
            TokenizerAddsBos = tokenizerAddsBos,
            Variables = FixedDate,
        });

    private static readonly ChunkInput First = ChunkInput.FromText("First document.");
    private static readonly ChunkInput Second = ChunkInput.FromText("Second document.");

    private static List<PromptMessage> RagChat() =>
    [
        PromptMessage.Text(PromptRole.System, "Answer from the documents."),
        new(PromptRole.User, [new ChunkPart(First), new ChunkPart(Second), new TextPart("What do they say?")]),
    ];

    [Fact]
    public void Llama_prompt_splits_at_the_chunks_and_ends_with_the_assistant_header()
    {
        var prompt = Layout("llama-3.2-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>").Lay(RagChat());

        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
            + "Answer from the documents.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
            prompt.Prefix);
        Assert.Equal([First, Second], prompt.Chunks);
        Assert.Equal("What do they say?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", prompt.Query);
    }

    [Fact]
    public void Prefix_chunks_and_query_rejoin_to_the_template_rendering_of_the_text()
    {
        var template = Load("qwen2.5-instruct.jinja");
        var prompt = ChatPromptLayout.ForTemplate(template).Lay(RagChat());
        var whole = template.Render(
            [new ChatTemplateMessage("system", "Answer from the documents."), new ChatTemplateMessage("user", "First document.Second document.What do they say?")],
            new ChatTemplateContext { AddGenerationPrompt = true });

        Assert.Equal(whole, prompt.Prefix + First.Text + Second.Text + prompt.Query);
        Assert.EndsWith("<|im_start|>assistant\n", prompt.Query, StringComparison.Ordinal);
    }

    [Fact]
    public void Template_bos_is_dropped_when_the_tokenizer_adds_its_own()
    {
        var withBos = Layout("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>").Lay(RagChat());
        var tokenizerBos = Layout("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>", tokenizerAddsBos: true).Lay(RagChat());

        Assert.Equal("<s> [INST] Answer from the documents.\n\n", withBos.Prefix);
        Assert.Equal(" [INST] Answer from the documents.\n\n", tokenizerBos.Prefix);
        Assert.Equal(" [INST] ", Layout("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>", tokenizerAddsBos: true)
            .Lay([new(PromptRole.User, [new ChunkPart(First), new TextPart("Q")])]).Prefix);
    }

    [Fact]
    public void Chat_without_chunks_splits_where_the_conversation_begins()
    {
        var layout = Layout("phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>");

        var prompt = layout.Lay([PromptMessage.Text(PromptRole.System, "Be brief."), PromptMessage.Text(PromptRole.User, "Hi")]);

        Assert.Equal("<|system|>\nBe brief.<|end|>\n<|user|>\n", prompt.Prefix);
        Assert.Empty(prompt.Chunks);
        Assert.Equal("Hi<|end|>\n<|assistant|>\n", prompt.Query);
    }

    [Fact]
    public void Chunks_in_different_messages_are_refused_as_not_adjacent()
    {
        var layout = Layout("qwen2.5-instruct.jinja");

        var e = Assert.Throws<ArgumentException>(() => layout.Lay(
        [
            new(PromptRole.User, [new ChunkPart(First), new TextPart("a")]),
            PromptMessage.Text(PromptRole.Assistant, "b"),
            new(PromptRole.User, [new ChunkPart(Second), new TextPart("c")]),
        ]));

        Assert.Contains("adjacent", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Chunk_in_a_message_the_template_drops_is_refused()
    {
        var layout = Layout("phi-3.5-mini-instruct.jinja");

        var e = Assert.Throws<ArgumentException>(() => layout.Lay(
        [
            new(PromptRole.Tool, [new ChunkPart(First)]),
            PromptMessage.Text(PromptRole.User, "Q"),
        ]));

        Assert.Contains("dropped", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Template_refusal_becomes_an_argument_error_with_its_message()
    {
        var layout = Layout("gemma-2-it.jinja", "<bos>", "<eos>");

        var e = Assert.Throws<ArgumentException>(() => layout.Lay(RagChat()));

        Assert.Contains("System role not supported", e.Message, StringComparison.Ordinal);
        Assert.IsType<ChatTemplateException>(e.InnerException);
    }

    [Fact]
    public void Chat_without_a_user_message_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => Layout("qwen2.5-instruct.jinja").Lay([PromptMessage.Text(PromptRole.System, "x")]));

        Assert.Contains("user message", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Model_without_a_chat_template_uses_the_plain_layout()
    {
        using var model = TransformerModel.Load(SharedModels.Path("tiny-pydocs"), new CpuBackend(1));

        Assert.Same(ChatPromptLayout.Plain, ChatPromptLayout.ForModel(model));
    }

    [SkippableFact]
    public void Model_with_a_chat_template_in_its_directory_uses_it()
    {
        using var dir = TempDirectory.CopyOf(SharedModels.Path("tiny-pydocs"));
        File.WriteAllText(dir.Combine("chat_template.jinja"), "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        using var model = TransformerModel.Load(dir.Path, new CpuBackend(1));

        var layout = Assert.IsType<TemplateChatPromptLayout>(ChatPromptLayout.ForModel(model));
        var prompt = layout.Lay(RagChat());

        Assert.Equal("<|endoftext|><system>Answer from the documents.<user>", prompt.Prefix);
        Assert.Equal("What do they say?<assistant>", prompt.Query);
    }
}
