using System.CommandLine;
using System.Globalization;
using KvFusion.Engine.Models;
using LLama.Exceptions;
using LLama.Native;
using Spectre.Console;

namespace KvFusion.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/KvFusion.Benchmarks -- engine …</c>: our engine against llama.cpp in the
/// same process and run, interleaved, so the shared machine's noise hits both (cpu.md).
/// </summary>
internal static class Program
{
    /// <summary>Progress and warnings go to standard error so standard output carries only the result.</summary>
    private static readonly IAnsiConsole Diagnostics = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    public static async Task<int> Main(string[] args)
    {
        // Must happen before LLamaSharp loads the native library; llama.cpp's load-time chatter would bury the table.
        NativeLibraryConfig.All.WithLogCallback(static (_, _) => { });

        var root = new RootCommand("KvFusion benchmarks against llama.cpp (LLamaSharp), measured in the same run.");
        root.Subcommands.Add(EngineCommand());
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }

    private static Command EngineCommand()
    {
        var model = new Option<string?>("--model") { Description = "Hugging Face model directory (default: shared/models/tiny-pydocs found upwards from the current directory)." };
        var gguf = new Option<string?>("--gguf") { Description = "GGUF of the same model for llama.cpp (default: the model directory's NAME-f16.gguf)." };
        var promptTokens = new Option<string>("--prompt-tokens") { Description = "Comma-separated prompt lengths.", DefaultValueFactory = _ => "128,512,2048" };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Greedy decode steps after each prompt (capped by the context).", DefaultValueFactory = _ => 64 };
        var threads = new Option<string>("--threads") { Description = "Comma-separated thread counts.", DefaultValueFactory = _ => "1,2" };
        var rounds = new Option<int>("--rounds") { Description = "Rounds over all prompt lengths.", DefaultValueFactory = _ => 3 };
        var runs = new Option<int>("--runs") { Description = "Runs per engine, prompt length and round.", DefaultValueFactory = _ => 5 };
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this file." };
        var command = new Command("engine", "Prefill tokens/s, TTFT and decode tokens/s of our engine and llama.cpp, interleaved, with ratios.")
        {
            model, gguf, promptTokens, genTokens, threads, rounds, runs, json,
        };
        command.SetAction((parse, ct) =>
        {
            try
            {
                var modelDirectory = BenchmarkSettings.ResolveModel(parse.GetValue(model));
                var settings = new BenchmarkSettings(
                    modelDirectory,
                    BenchmarkSettings.ResolveGguf(parse.GetValue(gguf), modelDirectory),
                    ParseList(parse.GetValue(promptTokens)!, "--prompt-tokens"),
                    Positive(parse.GetValue(genTokens), "--gen-tokens", allowZero: true),
                    ParseList(parse.GetValue(threads)!, "--threads"),
                    Positive(parse.GetValue(rounds), "--rounds"),
                    Positive(parse.GetValue(runs), "--runs"),
                    parse.GetValue(json));
                var runner = new ComparisonRunner(settings, Diagnostics);
                var results = runner.Run(ct);

                // Standard output is usually a file here; Spectre would wrap the wide tables at 80 columns.
                var stdout = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
                if (Console.IsOutputRedirected)
                {
                    stdout.Profile.Width = 200;
                }

                Report.WriteTables(stdout, settings, results, runner.ParallelChecks, runner.Published);
                if (settings.JsonPath is { } path)
                {
                    Report.WriteJson(path, settings, results, runner.ParallelChecks, runner.Published);
                    Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
                }

                return Task.FromResult(0);
            }
            catch (Exception e) when (e is BenchmarkException or ModelLoadException or IOException or ArgumentException
                                          or InvalidOperationException or RuntimeError or LoadWeightsFailedException)
            {
                Diagnostics.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
                return Task.FromResult(1);
            }
            catch (TypeInitializationException e) when (e.InnerException is RuntimeError inner)
            {
                // LLamaSharp's NativeApi static constructor throws when no native llama.cpp variant loads.
                Diagnostics.MarkupLineInterpolated($"[red]error:[/] llama.cpp native library: {inner.Message}");
                return Task.FromResult(1);
            }
            catch (OperationCanceledException)
            {
                Diagnostics.MarkupLine("[yellow]cancelled[/]");
                return Task.FromResult(130);
            }
        });
        return command;
    }

    private static int[] ParseList(string text, string what)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0)
            {
                throw new BenchmarkException($"{what}: '{parts[i]}' is not a positive integer.");
            }
        }

        return values.Length > 0 ? values.Distinct().ToArray() : throw new BenchmarkException($"{what}: give at least one value.");
    }

    private static int Positive(int value, string what, bool allowZero = false) =>
        value > 0 || (allowZero && value == 0) ? value : throw new BenchmarkException($"{what}: {value} is not {(allowZero ? "a non-negative" : "a positive")} integer.");
}
