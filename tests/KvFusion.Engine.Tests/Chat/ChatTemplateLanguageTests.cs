using System.Text.Json;
using KvFusion.Engine.Chat;

namespace KvFusion.Engine.Tests.Chat;

/// <summary>Each construct of the supported Jinja subset, against jinja2's rendering of the same template (language-cases.json).</summary>
public sealed class ChatTemplateLanguageTests
{
    public static TheoryData<string> Cases => ChatTemplateTestData.LanguageCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Construct_renders_like_jinja2(string name)
    {
        var (source, variables, expected) = ChatTemplateTestData.LanguageCase(name);
        var template = ChatTemplate.Parse(source);
        if (expected.TryGetProperty("error", out var error))
        {
            var e = Assert.Throws<ChatTemplateException>(() => template.RenderVariables(variables));
            Assert.Equal(expected.GetProperty("error_type").GetString() == "TemplateError", e.RaisedByTemplate);
            if (e.RaisedByTemplate)
            {
                Assert.Equal(error.GetString(), e.Reason);
            }

            Assert.True(e.Line > 0, "a render error names its line");
            return;
        }

        Assert.Equal(expected.GetProperty("output").GetString(), template.RenderVariables(variables));
    }

    [Theory]
    [InlineData("{% macro greet(n) %}hi {{ n }}{% endmacro %}", "macro", 1, 4)]
    [InlineData("ok\n  {% filter upper %}x{% endfilter %}", "filter", 2, 6)]
    [InlineData("{% call foo() %}{% endcall %}", "call", 1, 4)]
    [InlineData("{% include 'other.jinja' %}", "include", 1, 4)]
    [InlineData("{% raw %}{{ x }}{% endraw %}", "raw", 1, 4)]
    public void Unsupported_tag_is_named_with_its_position(string source, string tag, int line, int column)
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));

        Assert.Contains($"'{{% {tag} %}}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("not supported", e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Line, e.Column));
    }

    [Fact]
    public void Unknown_tag_is_named_with_its_position()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("a\n{% frobnicate %}"));

        Assert.Contains("frobnicate", e.Message, StringComparison.Ordinal);
        Assert.Equal((2, 4), (e.Line, e.Column));
    }

    [Fact]
    public void Unsupported_filter_is_named_with_its_position()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("line one\n{{ messages | wordwrap(10) }}"));

        Assert.Contains("filter 'wordwrap'", e.Message, StringComparison.Ordinal);
        Assert.Equal((2, 15), (e.Line, e.Column));
    }

    [Fact]
    public void Unsupported_test_is_named_with_its_position()
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{% if x is escaped %}{% endif %}"));

        Assert.Contains("test 'escaped'", e.Message, StringComparison.Ordinal);
        Assert.Equal((1, 12), (e.Line, e.Column));
    }

    [Fact]
    public void Unsupported_method_is_named_when_called()
    {
        var template = ChatTemplate.Parse("{{ 'x'.zfill(3) }}");

        var e = Assert.Throws<ChatTemplateException>(() => template.RenderVariables(new Dictionary<string, object?>()));

        Assert.Contains("str.zfill()", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void Recursive_loops_and_printf_formatting_are_refused_clearly()
    {
        var recursive = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{% for x in y recursive %}{% endfor %}"));
        var printf = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ '%s' % 1 }}").RenderVariables(new Dictionary<string, object?>()));

        Assert.Contains("recursive", recursive.Message, StringComparison.Ordinal);
        Assert.Contains("printf-style", printf.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{% if true %}never closed", "expected one of 'elif', 'else', 'endif'")]
    [InlineData("{{ 'unterminated }}", "Unterminated string")]
    [InlineData("{{ 1 + }}", "Expected an expression")]
    [InlineData("{% endfor %}", "nothing open to close")]
    [InlineData("{{ x ", "Unclosed tag")]
    public void Syntax_errors_say_what_is_wrong(string source, string message)
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(source));

        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.True(e.Line > 0);
    }

    [Fact]
    public void Raise_exception_surfaces_the_template_message_and_position()
    {
        var template = ChatTemplate.Parse("{% for m in messages %}\n  {{ raise_exception('Only user and assistant roles are supported!') }}\n{% endfor %}");

        var e = Assert.Throws<ChatTemplateException>(() => template.Render([new ChatTemplateMessage("user", "x")], new ChatTemplateContext()));

        Assert.True(e.RaisedByTemplate);
        Assert.Equal("Only user and assistant roles are supported!", e.Reason);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void Attribute_of_an_undefined_value_names_the_variable()
    {
        var template = ChatTemplate.Parse("{{ tools.first }}");

        var e = Assert.Throws<ChatTemplateException>(() => template.RenderVariables(new Dictionary<string, object?>()));

        Assert.Contains("'tools' is undefined", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Strftime_now_reads_the_given_clock()
    {
        var template = ChatTemplate.Parse("{{ strftime_now('%Y-%m-%d %H:%M %a %B %j %y %%') }}");
        var context = new ChatTemplateContext { Clock = () => new DateTime(2024, 7, 26, 9, 5, 0, DateTimeKind.Local) };

        Assert.Equal("2024-07-26 09:05 Fri July 208 24 %", template.Render([], context));
    }

    [Fact]
    public void Messages_carry_extra_fields_to_the_template()
    {
        var template = ChatTemplate.Parse("{% for m in messages %}{{ m.role }}:{{ m.tool_calls | length }}{% endfor %}");
        var message = new ChatTemplateMessage("assistant", "")
        {
            Extra = new Dictionary<string, object?> { ["tool_calls"] = new List<object?> { new Dictionary<string, object?> { ["name"] = "f" } } },
        };

        Assert.Equal("assistant:1", template.Render([message], new ChatTemplateContext()));
    }

    [Fact]
    public void Long_outputs_are_built_without_quadratic_copying()
    {
        var template = ChatTemplate.Parse("{% for i in range(20000) %}{{ i }},{% endfor %}");

        var text = template.RenderVariables(new Dictionary<string, object?>());

        Assert.StartsWith("0,1,2,", text, StringComparison.Ordinal);
        Assert.EndsWith("19999,", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_of_unknown_types_are_refused()
    {
        var template = ChatTemplate.Parse("{{ x }}");

        var e = Assert.Throws<ChatTemplateException>(() => template.RenderVariables(new Dictionary<string, object?> { ["x"] = new Uri("http://a") }));

        Assert.Contains("Uri", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_values_are_passed_as_their_python_equivalents()
    {
        using var doc = JsonDocument.Parse("""{"a": [1, 2.5, "s", true, null]}""");
        var template = ChatTemplate.Parse("{{ x }}");

        Assert.Equal("{'a': [1, 2.5, 's', True, None]}", template.RenderVariables(new Dictionary<string, object?> { ["x"] = doc.RootElement }));
    }
}
