using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace KvFusion.Cli.Tests.Commands;

/// <summary>
/// Bad input through the command line: every case exits non-zero with one line on standard error that names the
/// problem, and no output holds "Unhandled exception" or a stack frame.
/// </summary>
[Collection(ConsoleCommands.Name)]
public sealed class MalformedInputTests
{
    /// <summary>Model-folder malformations: name → (damage to a valid folder, what the message must say).</summary>
    private static readonly Dictionary<string, (Action<string> Damage, string Problem)> ModelCases = new(StringComparer.Ordinal)
    {
        ["duplicate tensor name"] = (dir => WriteHeaderOnly(dir,
            "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "tensor 'model.norm.weight' appears twice"),
        ["shape element count overflow"] = (dir => WriteHeaderOnly(dir,
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}", 4),
            "does not fit in 64 bits"),
        ["architecture that is a number"] = (dir => EditConfig(dir, c => c["architectures"] = new JsonArray(1)),
            "'architectures[0]' must be a class name string"),
        ["heads times head_dim overflow"] = (dir => EditConfig(dir, c =>
        {
            c["num_attention_heads"] = 65536;
            c["num_key_value_heads"] = 65536;
            c["head_dim"] = 65536;
        }), "overflows the largest tensor dimension"),
        ["rms_norm_eps beyond double"] = (dir => File.WriteAllText(Path.Combine(dir, "config.json"),
            File.ReadAllText(Path.Combine(dir, "config.json")).Replace("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 1e400", StringComparison.Ordinal)),
            "'rms_norm_eps' must be a finite number"),
        ["config that is not JSON"] = (dir => File.WriteAllText(Path.Combine(dir, "config.json"), "{\"hidden_size\": 64,"),
            "is not valid JSON"),
        ["added token with null content"] = (dir => EditTokenizer(dir, t => t["added_tokens"]![0]!["content"] = null),
            "'added_tokens[0].content' must be the token's text, got null"),
        ["two special tokens with one id"] = (dir => EditTokenizer(dir, t => t["added_tokens"]!.AsArray().Add(
            new JsonObject
            {
                ["id"] = 0, ["content"] = "<|other|>", ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            })),
            "is also the id of special token '<|endoftext|>'"),
        ["vocabulary id of int.MaxValue"] = (dir => EditTokenizer(dir, t => t["model"]!["vocab"]!["zzz-new-token"] = int.MaxValue),
            "'model.vocab.zzz-new-token' must be a token id"),
        ["shard name that is a number"] = (dir => File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
            "{\"weight_map\":{\"model.norm.weight\":5}}"),
            "'weight_map.model.norm.weight' must be a shard file name, got the number 5"),
    };

    public static TheoryData<string, string> ModelCaseNames()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in ModelCases.Keys)
        {
            data.Add(name, "model info");
            data.Add(name, "generate");
        }

        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(ModelCaseNames))]
    public async Task Malformed_model_folder_is_one_line_naming_the_problem(string malformation, string command)
    {
        using var model = ValidModel();
        var (damage, problem) = ModelCases[malformation];
        damage(model.Path);
        string[] args = command == "model info"
            ? ["model", "info", model.Path]
            : ["generate", "--model", model.Path, "--prompt", "def main():", "--max-tokens", "1"];

        var line = await FailsWithOneLine(args);

        Assert.Contains(problem, line, StringComparison.Ordinal);
        Assert.Contains(model.Path, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_fusion_case_file_names_file_line_and_field()
    {
        using var temp = new TempDirectory();
        var cases = temp.Combine("cases.jsonl");
        File.WriteAllLines(cases, ["{\"chunks\":[\"c\"],\"query\":\"q\",\"answer\":\"a\"}", "{\"chunks\":[\"c\"],\"query\":1,\"answer\":\"a\"}"]);

        var line = await FailsWithOneLine("eval", "fusion", "--cases", cases);

        Assert.Contains($"{cases}:2: 'query': must be a string, got a number", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_fusion_case_file_is_named()
    {
        using var temp = new TempDirectory();
        var cases = temp.Combine("absent.jsonl");

        Assert.Contains(cases, await FailsWithOneLine("eval", "fusion", "--cases", cases), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Chunk_with_a_text_that_is_not_a_string_names_file_line_and_field()
    {
        using var model = ValidModel();
        var chunks = model.Combine("chunks.jsonl");
        File.WriteAllLines(chunks, ["\"def f(): pass\"", "{\"text\": 5}"]);

        var line = await FailsWithOneLine("ask", "--model", model.Path, "--chunks-from", chunks, "--query", "q", "--mode", "full");

        Assert.Contains($"{chunks}:2: 'text': must be a string, got a number", line, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Chunk_json_array_with_a_wrong_item_names_the_item()
    {
        using var model = ValidModel();
        var chunks = model.Combine("chunks.json");
        File.WriteAllText(chunks, "[\"a\",\n [1]]");

        var line = await FailsWithOneLine("ask", "--model", model.Path, "--chunks-from", chunks, "--query", "q", "--mode", "full");

        Assert.Contains($"{chunks}: '[1]': expected a string or an object with \"text\", got an array", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_blend_variant_is_one_line()
    {
        using var temp = new TempDirectory();
        var chunks = temp.Combine("chunks.jsonl");
        File.WriteAllText(chunks, "\"text\"\n");

        var line = await FailsWithOneLine("ask", "--chunks-from", chunks, "--query", "q", "--mode", "blend:0.15:bogus");

        Assert.Contains("bogus", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Cannot parse argument 'abc' for option '--max-tokens'", "generate", "--prompt", "x", "--max-tokens", "abc")]
    [InlineData("Option '--prompt' is required", "generate", "--max-tokens", "3")]
    [InlineData("Unrecognized command or argument '--bogus'", "generate", "--prompt", "x", "--bogus")]
    [InlineData("Temperature must be a finite number", "generate", "--prompt", "x", "--temperature", "-1")]
    [InlineData("Unknown device 'tpu'", "generate", "--prompt", "x", "--device", "tpu")]
    [InlineData("Model directory not found: /nonexistent/kvfusion-model", "model", "info", "/nonexistent/kvfusion-model")]
    [InlineData("unknown mode 'fastest'", "ask", "--chunks-from", "x.jsonl", "--query", "q", "--mode", "fastest")]
    // Review: user mistakes that reached ErrorReport as framework exceptions (ArgumentException and kin), which
    // are now internal errors; each is a typed error or a parse error instead.
    [InlineData("--threads must be at least 1, got 0", "generate", "--prompt", "x", "--threads", "0")]
    [InlineData("--max-tokens must be from 0 to", "generate", "--prompt", "x", "--max-tokens", "-1")]
    [InlineData("TopP must be in (0, 1]", "generate", "--prompt", "x", "--top-p", "2")]
    [InlineData("--chunk-tokens must be at least 1, got 0", "ask", "--chunks-from", "x.jsonl", "--query", "q", "--chunk-tokens", "0")]
    [InlineData("--max-tokens must be from 0 to", "ask", "--chunks-from", "x.jsonl", "--query", "q", "--max-tokens", "2147483647")]
    [InlineData("Unknown model shape 'bogus'", "bench", "kernels", "--shape", "bogus")]
    [InlineData("--rows must be at least 1, got 0", "bench", "kernels", "--rows", "0")]
    [InlineData("--ttft-runs must be at least 1, got 0", "eval", "fusion", "--cases", "x.jsonl", "--ttft-runs", "0")]
    [InlineData("Cases", "eval", "cases", "--out", "x.jsonl", "--cases", "0")]
    [InlineData("--floor is an estimated KL: at least 0; got -1", "eval", "fusion", "--cases", "x.jsonl", "--floor", "-1")]
    [InlineData("Unknown search 'best' (auto, exact, greedy)", "profile", "sharing", "--sender", "a", "--receiver", "b", "--cases", "x.jsonl", "--search", "best")]
    [InlineData("The budget is a fraction of full reuse's KL, in (0, 1]", "profile", "sharing", "--sender", "a", "--receiver", "b", "--cases", "x.jsonl", "--budget", "2")]
    [InlineData("Share modes and --profile need --sender", "eval", "fusion", "--cases", "x.jsonl", "--modes", "full,share:0-1")]
    [InlineData("Cannot parse argument 'abc' for option '--threads'", "generate", "--prompt", "x", "--threads", "abc")]
    [InlineData("Cannot parse argument 'x' for option '--chunk-tokens'", "ask", "--chunks-from", "x.jsonl", "--query", "q", "--chunk-tokens", "x")]
    public async Task Bad_option_value_is_one_line(string problem, params string[] args) =>
        Assert.Contains(problem, await FailsWithOneLine(args), StringComparison.Ordinal);

    /// <summary>Runs the command in-process and returns its one line of standard error after checking the rules.</summary>
    private static async Task<string> FailsWithOneLine(params string[] args)
    {
        var (code, stdout, stderr) = await Run(args);

        Assert.NotEqual(0, code);
        foreach (var output in new[] { stdout, stderr })
        {
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
            Assert.DoesNotContain(output.Split('\n'), l => l.StartsWith("   at ", StringComparison.Ordinal));
        }

        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("kvfusion: error: ", line, StringComparison.Ordinal);
        return line;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> Run(string[] args)
    {
        // Not disposed: Spectre's console may keep the writer it saw first, and a disposed one would throw later.
        var stdout = new StringWriter(CultureInfo.InvariantCulture);
        var stderr = new StringWriter(CultureInfo.InvariantCulture);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var code = await Program.Main(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    /// <summary>The small Mistral zoo model with the tiny-pydocs tokenizer (same 4096 vocabulary), so generate runs.</summary>
    private static TempDirectory ValidModel()
    {
        var dir = TempDirectory.CopyOf(SharedModels.Path("zoo/mistral"));
        File.Copy(Path.Combine(SharedModels.Path("tiny-pydocs"), "tokenizer.json"), dir.Combine("tokenizer.json"));
        return dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit) => EditJson(Path.Combine(dir, "config.json"), edit);

    private static void EditTokenizer(string dir, Action<JsonObject> edit) => EditJson(Path.Combine(dir, "tokenizer.json"), edit);

    private static void EditJson(string path, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    /// <summary>Replaces the weights with a header and zeroed data of the given size.</summary>
    private static void WriteHeaderOnly(string dir, string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(Path.Combine(dir, "model.safetensors"));
        fs.Write(BitConverter.GetBytes((long)h.Length));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
    }
}
