using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using KvFusion.Cuda.Backend;
using Microsoft.Extensions.Logging;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Errors;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using KvFusion.Hub;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>Options and helpers shared by the commands.</summary>
internal static class CommonOptions
{
    public static Option<string?> Model() => new("--model")
    {
        Description = $"Model directory, or hf:OWNER/NAME[@REVISION] to download one from the Hugging Face hub (default: ${ModelDirectory.EnvironmentVariable}, else ../shared/models/tiny-pydocs).",
    };

    public static Option<int?> Threads()
    {
        var threads = new Option<int?>("--threads") { Description = "CPU threads (default: all cores)." };
        threads.Validators.Add(r =>
        {
            if (IntValue(r) is < 1 and var n)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"--threads must be at least 1, got {n}."));
            }
        });
        return threads;
    }

    /// <summary>Makes <paramref name="option"/> a parse error below <paramref name="min"/>.</summary>
    public static Option<int> AtLeast(this Option<int> option, int min)
    {
        option.Validators.Add(r =>
        {
            if (IntValue(r) is { } v && v < min)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be at least {min}, got {v}."));
            }
        });
        return option;
    }

    /// <summary>Makes <paramref name="option"/> a parse error outside at least <paramref name="min"/> up to <paramref name="max"/>.</summary>
    public static Option<int> Between(this Option<int> option, int min, int max)
    {
        option.Validators.Add(r =>
        {
            if (IntValue(r) is { } v && (v < min || v > max))
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be from {min} to {max}, got {v}."));
            }
        });
        return option;
    }

    /// <summary>
    /// The integer an option result holds, or null when its token is not an integer (validators run even then, and
    /// the conversion reports its own parse error).
    /// </summary>
    private static int? IntValue(OptionResult r) =>
        r.Tokens.Count == 0 ? r.GetValueOrDefault<int?>()
        : int.TryParse(r.Tokens[^1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : null;

    /// <summary>
    /// Runs a library's check of values that came from options: its <see cref="ArgumentException"/> is the user's
    /// bad option value and becomes a <see cref="CliException"/> (any other exception stays what it is).
    /// </summary>
    public static void CheckOptions(Action check)
    {
        try
        {
            check();
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>Like <see cref="CheckOptions(Action)"/>, returning the checked value.</summary>
    public static T CheckOptions<T>(Func<T> check)
    {
        try
        {
            return check();
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
    }

    public static Option<string> Device() => new("--device")
    {
        Description = "Compute device: cpu, cuda (device 0) or cuda:N.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>Warnings of the libraries (e.g. a cubin cache that cannot be written), on standard error.</summary>
    public static ILoggerFactory Logs { get; } = LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Warning)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

    /// <summary>Diagnostics go to standard error so standard output carries only the result.</summary>
    public static IAnsiConsole Diagnostics { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
    });

    public static ComputeBackend CreateBackend(string device, int? threads) => CreateBackend(device, threads, CudaWeightPrecision.AsStored);

    /// <summary>The backend a <c>--device</c> value names: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public static ComputeBackend CreateBackend(string device, int? threads, CudaWeightPrecision weights)
    {
        var d = device.Trim().ToLowerInvariant();
        if (d == "cpu")
        {
            if (threads is < 1)
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture, $"--threads must be at least 1, got {threads}."));
            }

            try
            {
                return new CpuBackend(threads);
            }
            catch (PlatformNotSupportedException e)
            {
                // The machine, not the program: the CPU lacks the instructions the backend needs.
                throw new CliException(e.Message);
            }
        }

        if (d == "cuda" || d.StartsWith("cuda:", StringComparison.Ordinal))
        {
            var ordinal = 0;
            if (d.Length > 5 && !int.TryParse(d.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out ordinal))
            {
                throw new CliException($"'{device}' is not a CUDA device: use cuda or cuda:N.");
            }

            return CudaBackend.Create(new CudaBackendOptions { DeviceOrdinal = ordinal, WeightPrecision = weights }, Logs.CreateLogger("KvFusion.Cuda"));
        }

        throw new CliException($"Unknown device '{device}'. Available: cpu, cuda, cuda:N.");
    }

    public static TransformerModel LoadModel(string? model, ComputeBackend backend) =>
        TransformerModel.Load(ResolveModel(model), backend);

    /// <summary>
    /// The model directory a <c>--model</c> value names: <c>hf:OWNER/NAME[@REVISION]</c> is downloaded into the cache
    /// (with a progress bar on standard error) or taken from it; anything else goes through <see cref="ModelDirectory.Resolve"/>.
    /// </summary>
    public static string ResolveModel(string? model)
    {
        if (!ModelSource.IsHubReference(model))
        {
            return ModelDirectory.Resolve(model);
        }

        var options = CheckOptions(ModelDownloadOptions.FromEnvironment);
        try
        {
            // Commands are synchronous up to here; the download is their first step, so blocking on it is harmless.
            return Diagnostics.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(Markup.Escape(model!), autoStart: true, maxValue: 1);
                    var progress = new Progress<ModelDownloadProgress>(p =>
                    {
                        task.MaxValue = Math.Max(1, p.TotalLength);
                        task.Value = p.TotalBytes;
                        task.Description = Markup.Escape($"{model} {p.File}");
                    });
                    return await ModelSource.ResolveAsync(model!, options, null, Logs.CreateLogger("KvFusion.Hub"), progress).ConfigureAwait(false);
                })
                .GetAwaiter().GetResult();
        }
        catch (ModelDownloadException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>Runs a command body; a failure becomes one line on standard error and a non-zero exit code.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return ErrorReport.Report(e);
        }
    }
}

/// <summary>A user-facing command error: a bad option value or an unusable combination of options.</summary>
internal sealed class CliException(string message) : KvFusionException(message);
