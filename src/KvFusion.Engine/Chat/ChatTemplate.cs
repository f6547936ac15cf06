using System.Text.Json;

namespace KvFusion.Engine.Chat;

/// <summary>
/// A model's chat template (the Jinja <c>chat_template</c> of tokenizer_config.json), parsed once and rendered by this
/// project's interpreter of the Jinja subset chat templates use, with transformers' settings (<c>trim_blocks</c>,
/// <c>lstrip_blocks</c>, <c>raise_exception</c>, <c>strftime_now</c>, its <c>tojson</c>). See docs/chat-templates.md.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>File name of the template transformers writes beside tokenizer_config.json since 4.43.</summary>
    public const string TemplateFileName = "chat_template.jinja";

    /// <summary>File name of the tokenizer configuration.</summary>
    public const string TokenizerConfigFileName = "tokenizer_config.json";

    private readonly List<Statement> _body;

    private ChatTemplate(string source, List<Statement> body, string? bosToken, string? eosToken)
    {
        Source = source;
        _body = body;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>The template source.</summary>
    public string Source { get; }

    /// <summary>The tokenizer configuration's <c>bos_token</c>, when loaded from one.</summary>
    public string? BosToken { get; }

    /// <summary>The tokenizer configuration's <c>eos_token</c>, when loaded from one.</summary>
    public string? EosToken { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="ChatTemplateException">A syntax error or a construct the interpreter does not support (with its line and column).</exception>
    public static ChatTemplate Parse(string source) => Parse(source, null, null);

    private static ChatTemplate Parse(string source, string? bos, string? eos)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, Parser.Parse(source), bos, eos);
    }

    /// <summary>
    /// Loads the template of a tokenizer_config.json, given as its path, its directory, or its JSON text: the
    /// <c>chat_template</c> string, or from the list of named templates the one named <paramref name="name"/>
    /// (default <c>default</c>); <c>bos_token</c>/<c>eos_token</c> as strings or AddedToken objects.
    /// </summary>
    /// <exception cref="ChatTemplateException">No template, an unknown name, malformed JSON, or a template that does not parse.</exception>
    public static ChatTemplate FromTokenizerConfig(string pathOrJson, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(pathOrJson);
        return TryFromTokenizerConfig(pathOrJson, name)
            ?? throw new ChatTemplateException($"The tokenizer configuration has no chat_template: {Describe(pathOrJson)}.");
    }

    /// <summary>As <see cref="FromTokenizerConfig"/>, but null when the configuration has no <c>chat_template</c>.</summary>
    public static ChatTemplate? TryFromTokenizerConfig(string pathOrJson, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(pathOrJson);
        var (json, origin) = ReadConfig(pathOrJson);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ChatTemplateException($"The tokenizer configuration is not valid JSON ({origin}): {e.Message}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new ChatTemplateException($"The tokenizer configuration is not a JSON object ({origin}).");
            }

            var bos = TokenText(root, "bos_token", origin);
            var eos = TokenText(root, "eos_token", origin);
            var source = TemplateText(root, name, origin);
            if (source is null && origin != "JSON text" && Path.GetDirectoryName(origin) is { } dir && File.Exists(Path.Combine(dir, TemplateFileName)))
            {
                source = File.ReadAllText(Path.Combine(dir, TemplateFileName));
            }

            return source is null ? null : Parse(source, bos, eos);
        }
    }

    /// <summary>
    /// The chat template of a model directory: <c>chat_template.jinja</c> when present, else tokenizer_config.json's
    /// <c>chat_template</c>; null when the model has neither (then prompts use the plain format).
    /// </summary>
    /// <exception cref="ChatTemplateException">A template that is present but does not parse, or a malformed configuration.</exception>
    public static ChatTemplate? TryFromModelDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var config = Path.Combine(directory, TokenizerConfigFileName);
        var file = Path.Combine(directory, TemplateFileName);
        if (File.Exists(config))
        {
            return TryFromTokenizerConfig(config);
        }

        return File.Exists(file) ? Parse(File.ReadAllText(file)) : null;
    }

    /// <summary>Renders <paramref name="messages"/> as transformers' <c>apply_chat_template(..., tokenize=False)</c> does.</summary>
    /// <exception cref="ChatTemplateException">The template failed: its own <c>raise_exception</c> (<see cref="ChatTemplateException.RaisedByTemplate"/>), or a type error.</exception>
    public string Render(IReadOnlyList<ChatTemplateMessage> messages, ChatTemplateContext context)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(context);
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = context.AddGenerationPrompt,
            ["bos_token"] = context.BosToken ?? BosToken ?? "",
            ["eos_token"] = context.EosToken ?? EosToken ?? "",
        };
        foreach (var (key, value) in context.Variables)
        {
            variables[key] = value;
        }

        return RenderVariables(variables, context.Clock);
    }

    /// <summary>Renders with exactly <paramref name="variables"/> (strings, numbers, bools, null, lists, dictionaries, <see cref="ChatTemplateMessage"/>).</summary>
    /// <exception cref="ChatTemplateException">The template failed.</exception>
    public string RenderVariables(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return new Interpreter(clock ?? (() => DateTime.Now)).Render(_body, variables);
    }

    private static (string Json, string Origin) ReadConfig(string pathOrJson)
    {
        if (pathOrJson.AsSpan().TrimStart().StartsWith("{"))
        {
            return (pathOrJson, "JSON text");
        }

        var path = Directory.Exists(pathOrJson) ? Path.Combine(pathOrJson, TokenizerConfigFileName) : pathOrJson;
        if (!File.Exists(path))
        {
            throw new ChatTemplateException($"The tokenizer configuration was not found: {path}.");
        }

        return (File.ReadAllText(path), Path.GetFullPath(path));
    }

    private static string Describe(string pathOrJson) =>
        pathOrJson.AsSpan().TrimStart().StartsWith("{") ? "JSON text" : pathOrJson;

    private static string? TokenText(JsonElement root, string property, string origin)
    {
        if (!root.TryGetProperty(property, out var token))
        {
            return null;
        }

        return token.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => token.GetString(),
            JsonValueKind.Object when token.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
            _ => throw new ChatTemplateException($"{property} in the tokenizer configuration ({origin}) is neither a string nor an AddedToken object with content."),
        };
    }

    private static string? TemplateText(JsonElement root, string? name, string origin)
    {
        if (!root.TryGetProperty("chat_template", out var template) || template.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (template.ValueKind == JsonValueKind.String)
        {
            return name is null or "default"
                ? template.GetString()
                : throw new ChatTemplateException($"The tokenizer configuration ({origin}) has a single chat_template, not one named '{name}'.");
        }

        if (template.ValueKind != JsonValueKind.Array)
        {
            throw new ChatTemplateException($"chat_template in the tokenizer configuration ({origin}) is neither a string nor a list of named templates.");
        }

        var wanted = name ?? "default";
        var names = new List<string>();
        foreach (var entry in template.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object
                || !entry.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                || !entry.TryGetProperty("template", out var t) || t.ValueKind != JsonValueKind.String)
            {
                throw new ChatTemplateException($"chat_template in the tokenizer configuration ({origin}) holds an entry without a string name and template.");
            }

            if (n.GetString() == wanted)
            {
                return t.GetString();
            }

            names.Add(n.GetString()!);
        }

        throw new ChatTemplateException($"The tokenizer configuration ({origin}) has no chat template named '{wanted}' (it has: {string.Join(", ", names)}).");
    }
}
