using System.CommandLine;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>Options and helpers shared by the commands.</summary>
internal static class CommonOptions
{
    public static Option<string?> Model() => new("--model")
    {
        Description = $"Hugging Face model directory (default: ${ModelDirectory.EnvironmentVariable}, else ../shared/models/tiny-pydocs).",
    };

    public static Option<int?> Threads() => new("--threads")
    {
        Description = "CPU threads (default: all cores).",
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "Compute device: cpu.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>Diagnostics go to standard error so standard output carries only the result.</summary>
    public static IAnsiConsole Diagnostics { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
    });

    public static IComputeBackend CreateBackend(string device, int? threads) => device.ToLowerInvariant() switch
    {
        "cpu" => new CpuBackend(threads),
        _ => throw new CliException($"Unknown device '{device}'. Available: cpu."),
    };

    public static TransformerModel LoadModel(string? model, IComputeBackend backend) =>
        TransformerModel.Load(ModelDirectory.Resolve(model), backend);

    /// <summary>Runs a command body, turning expected failures into a message and exit code 1.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ModelLoadException or CliException or ArgumentException or IOException or InvalidOperationException)
        {
            Diagnostics.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Diagnostics.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
    }
}

/// <summary>A user-facing command error.</summary>
internal sealed class CliException(string message) : Exception(message);
