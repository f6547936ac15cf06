using KvFusion.Engine.Chat;

namespace KvFusion.Engine.Tests.Chat;

/// <summary>Loading templates from tokenizer_config.json and model directories.</summary>
public sealed class ChatTemplateConfigTests
{
    [Fact]
    public void String_template_and_string_tokens_are_read()
    {
        var t = ChatTemplate.FromTokenizerConfig("""{"chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", "bos_token": "<s>", "eos_token": "</s>"}""");

        Assert.Equal(("<s>", "</s>"), (t.BosToken, t.EosToken));
        Assert.Equal("<s>hi</s>", t.Render([new ChatTemplateMessage("user", "hi")], new ChatTemplateContext()));
    }

    [Fact]
    public void Added_token_objects_give_their_content()
    {
        var t = ChatTemplate.FromTokenizerConfig("""
            {"chat_template": "x", "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
             "eos_token": {"content": "</s>", "normalized": false}}
            """);

        Assert.Equal(("<s>", "</s>"), (t.BosToken, t.EosToken));
    }

    [Fact]
    public void Named_templates_default_to_the_one_named_default()
    {
        const string json = """{"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]}""";

        Assert.Equal("plain", ChatTemplate.FromTokenizerConfig(json).Source);
        Assert.Equal("tools", ChatTemplate.FromTokenizerConfig(json, "tool_use").Source);
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(json, "rag"));
        Assert.Contains("no chat template named 'rag'", e.Message, StringComparison.Ordinal);
        Assert.Contains("tool_use, default", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_without_template_is_an_error_or_null()
    {
        Assert.Null(ChatTemplate.TryFromTokenizerConfig("""{"bos_token": "<s>"}"""));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("""{"bos_token": "<s>"}"""));
        Assert.Contains("no chat_template", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"chat_template": 5}""", "neither a string nor a list")]
    [InlineData("""{"chat_template": "x", "bos_token": 3}""", "bos_token")]
    [InlineData("""{"chat_template": [{"name": "default"}]}""", "without a string name and template")]
    [InlineData("""{ not json""", "not valid JSON")]
    [InlineData("""{"chat_template": "{% macro m() %}{% endmacro %}"}""", "macro")]
    public void Malformed_configs_are_named(string json, string message)
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(json));

        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_file_is_named()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("/nonexistent/dir/tokenizer_config.json"));

        Assert.Contains("/nonexistent/dir/tokenizer_config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Model_directory_reads_the_config_or_the_jinja_file_beside_it()
    {
        using var dir = new TempDirectory();
        Assert.Null(ChatTemplate.TryFromModelDirectory(dir.Path));

        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"bos_token": "<s>"}""");
        Assert.Null(ChatTemplate.TryFromModelDirectory(dir.Path));

        File.WriteAllText(dir.Combine("chat_template.jinja"), "{{ bos_token }}jinja file");
        var fromFile = ChatTemplate.TryFromModelDirectory(dir.Path)!;
        Assert.Equal("<s>jinja file", fromFile.Render([], new ChatTemplateContext()));

        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"bos_token": "<s>", "chat_template": "config"}""");
        Assert.Equal("config", ChatTemplate.FromTokenizerConfig(dir.Path).Source);
    }

    [Fact]
    public void Real_template_loads_from_a_tokenizer_config_file()
    {
        using var dir = new TempDirectory();
        var source = ChatTemplateTestData.TemplateSource("llama-3.2-instruct");
        File.WriteAllText(dir.Combine("tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|eot_id|>",
            ["chat_template"] = source,
        }));

        var t = ChatTemplate.TryFromModelDirectory(dir.Path)!;

        Assert.Equal(source, t.Source);
        Assert.StartsWith("<|begin_of_text|><|start_header_id|>system", t.Render([new ChatTemplateMessage("user", "x")], new ChatTemplateContext()), StringComparison.Ordinal);
    }
}
