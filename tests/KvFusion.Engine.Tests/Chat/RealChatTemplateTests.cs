using KvFusion.Engine.Chat;

namespace KvFusion.Engine.Tests.Chat;

/// <summary>The real chat templates of five model families render exactly as jinja2 (as transformers sets it up) renders them.</summary>
public sealed class RealChatTemplateTests
{
    public static TheoryData<string, string> Cases => ChatTemplateTestData.TemplateCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_like_jinja2_byte_for_byte(string template, string caseName)
    {
        var (messages, context) = ChatTemplateTestData.Case(template, caseName);
        var expected = ChatTemplateTestData.ExpectedTemplate(template, caseName);
        var chat = ChatTemplateTestData.Template(template);
        if (expected.TryGetProperty("error", out var error))
        {
            var e = Assert.Throws<ChatTemplateException>(() => chat.Render(messages, context));
            Assert.True(e.RaisedByTemplate, e.Message);
            Assert.Equal(error.GetString(), e.Reason);
            return;
        }

        Assert.Equal(expected.GetProperty("output").GetString(), chat.Render(messages, context));
    }

    [Fact]
    public void Llama_template_dates_the_system_header_with_strftime_now_when_no_date_is_given()
    {
        var chat = ChatTemplateTestData.Template("llama-3.2-instruct");
        var context = new ChatTemplateContext
        {
            AddGenerationPrompt = true,
            BosToken = "<|begin_of_text|>",
            Clock = () => new DateTime(2025, 3, 7, 12, 0, 0, DateTimeKind.Local),
        };

        var text = chat.Render([new ChatTemplateMessage("user", "hi")], context);

        Assert.Contains("Today Date: 07 Mar 2025\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Qwen_template_lists_tools_passed_as_a_variable()
    {
        var chat = ChatTemplateTestData.Template("qwen2.5-instruct");
        var tool = new Dictionary<string, object?>
        {
            ["type"] = "function",
            ["function"] = new Dictionary<string, object?> { ["name"] = "get_weather", ["parameters"] = new Dictionary<string, object?>() },
        };
        var context = new ChatTemplateContext { AddGenerationPrompt = true, Variables = new Dictionary<string, object?> { ["tools"] = new[] { tool } } };

        var text = chat.Render([new ChatTemplateMessage("user", "weather?")], context);

        Assert.Contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {}}}\n</tools>", text, StringComparison.Ordinal);
    }
}
