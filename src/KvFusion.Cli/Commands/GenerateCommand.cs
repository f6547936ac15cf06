using Spectre.Console;
using System.CommandLine;
using KvFusion.Engine.Generation;

namespace KvFusion.Cli.Commands;

/// <summary><c>kvfusion generate</c>: stream a continuation of a prompt to standard output.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var threads = CommonOptions.Threads();
        var device = CommonOptions.Device();
        var prompt = new Option<string>("--prompt") { Description = "Prompt text.", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 64 }.Between(0, int.MaxValue - 1);
        var temperature = new Option<float>("--temperature") { Description = "0 is greedy.", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0: all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold.", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "Sampler seed.", DefaultValueFactory = _ => 0UL };
        var command = new Command("generate", "Stream the model's continuation of a prompt to standard output.")
        {
            model, threads, device, prompt, maxTokens, temperature, topK, topP, seed,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(async () =>
        {
            var options = new SamplingOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
            };
            CommonOptions.CheckOptions(options.Validate);
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var m = CommonOptions.LoadModel(parse.GetValue(model), backend);
            var tokenizer = m.Tokenizer ?? throw new CliException($"{m.Directory} has no tokenizer.json; generate needs text.");
            var ids = tokenizer.Encode(parse.GetValue(prompt)!);
            if (ids.Length == 0)
            {
                throw new CliException("The prompt encodes to no tokens.");
            }

            if (ids.Length >= m.Config.MaxPositionEmbeddings)
            {
                throw new CliException($"The prompt has {ids.Length} tokens; the model's context is {m.Config.MaxPositionEmbeddings}.");
            }

            using var session = m.CreateSession(Math.Min(m.Config.MaxPositionEmbeddings, ids.Length + options.MaxTokens));
            var stats = new GenerationStats();
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            var stdout = Console.Out;
            await foreach (var token in TextGenerator.GenerateAsync(session, ids, options, stats, ct).ConfigureAwait(false))
            {
                await stdout.WriteAsync(token.Text).ConfigureAwait(false);
                await stdout.FlushAsync(ct).ConfigureAwait(false);
            }

            await stdout.WriteLineAsync().ConfigureAwait(false);
            var total = System.Diagnostics.Stopwatch.GetElapsedTime(start);
            var decode = total - stats.PrefillTime;
            CommonOptions.Diagnostics.MarkupLineInterpolated(
                $"[grey]{stats.PromptTokens} prompt tokens in {stats.PrefillTime.TotalMilliseconds:F1} ms, {stats.GeneratedTokens} generated ({(stats.GeneratedTokens > 1 ? (stats.GeneratedTokens - 1) / decode.TotalSeconds : 0):F0} tokens/s), finish: {stats.FinishReason}, {backend.DeviceName}[/]");
            return 0;
        }));
        return command;
    }
}
