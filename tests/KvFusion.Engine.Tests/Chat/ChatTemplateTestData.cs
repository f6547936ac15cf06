using System.Text.Json;
using KvFusion.Engine.Chat;

namespace KvFusion.Engine.Tests.Chat;

/// <summary>The real templates, conversations and jinja2's renderings in tests/data/chat-templates (made by render.py there).</summary>
internal static class ChatTemplateTestData
{
    public static string Directory => RepositoryRoot.Combine("tests", "data", "chat-templates");

    private static readonly Lazy<JsonElement> Templates = new(() => Load("templates.json"));
    private static readonly Lazy<JsonElement> Cases = new(() => Load("cases.json"));
    private static readonly Lazy<JsonElement> Language = new(() => Load("language-cases.json"));
    private static readonly Lazy<JsonElement> Expected = new(() => Load("expected.json"));

    private static JsonElement Load(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, name)));
        return doc.RootElement.Clone();
    }

    public static TheoryData<string, string> TemplateCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var template in Templates.Value.EnumerateArray())
        {
            foreach (var c in Cases.Value.GetProperty("cases").EnumerateArray())
            {
                data.Add(template.GetProperty("name").GetString()!, c.GetProperty("name").GetString()!);
            }
        }

        return data;
    }

    public static TheoryData<string> LanguageCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Language.Value.GetProperty("cases").EnumerateArray())
        {
            data.Add(c.GetProperty("name").GetString()!);
        }

        return data;
    }

    public static JsonElement TemplateInfo(string name) =>
        Templates.Value.EnumerateArray().Single(t => t.GetProperty("name").GetString() == name);

    public static string TemplateSource(string name) =>
        File.ReadAllText(Path.Combine(Directory, TemplateInfo(name).GetProperty("file").GetString()!));

    public static ChatTemplate Template(string name) => ChatTemplate.Parse(TemplateSource(name));

    public static (IReadOnlyList<ChatTemplateMessage> Messages, ChatTemplateContext Context) Case(string templateName, string caseName)
    {
        var info = TemplateInfo(templateName);
        var c = Cases.Value.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == caseName);
        var messages = c.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatTemplateMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!))
            .ToList();
        var variables = new Dictionary<string, object?>();
        foreach (var p in Cases.Value.GetProperty("variables").EnumerateObject())
        {
            variables[p.Name] = p.Value;
        }

        var context = new ChatTemplateContext
        {
            AddGenerationPrompt = c.GetProperty("add_generation_prompt").GetBoolean(),
            BosToken = info.GetProperty("bos_token").GetString() ?? "",
            EosToken = info.GetProperty("eos_token").GetString() ?? "",
            Variables = variables,
        };
        return (messages, context);
    }

    public static JsonElement ExpectedTemplate(string template, string caseName) =>
        Expected.Value.GetProperty("templates").GetProperty(template).GetProperty(caseName);

    public static (string Template, Dictionary<string, object?> Variables, JsonElement Expected) LanguageCase(string name)
    {
        var c = Language.Value.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        var variables = new Dictionary<string, object?>();
        foreach (var p in Language.Value.GetProperty("variables").EnumerateObject())
        {
            variables[p.Name] = p.Value;
        }

        return (c.GetProperty("template").GetString()!, variables, Expected.Value.GetProperty("language").GetProperty(name));
    }
}
