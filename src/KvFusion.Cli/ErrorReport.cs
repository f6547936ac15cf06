using System.CommandLine;
using System.CommandLine.Parsing;
using KvFusion.Cuda.Interop;
using KvFusion.Engine.Errors;

namespace KvFusion.Cli;

/// <summary>
/// How the command line reports failure: exactly one line on standard error and a non-zero exit code; never a stack
/// trace. Errors about the input exit with 1 as <c>kvfusion: error: MESSAGE</c>: the typed KvFusion errors (bad
/// options are <see cref="Commands.CliException"/>), file-system errors on the user's paths and a missing GPU or
/// CUDA library. Anything else, framework exceptions such as <see cref="ArgumentException"/> or
/// <see cref="InvalidOperationException"/> included, is a bug: <c>kvfusion: internal error: TYPE: MESSAGE</c> with
/// exit code 70, its trace shown only when <c>KVFUSION_TRACE=1</c>. Code that turns a user's mistake into an
/// exception therefore throws a typed error, never a framework one.
/// </summary>
internal static class ErrorReport
{
    /// <summary>Exit code for bad input, bad options and unavailable resources.</summary>
    public const int InputError = 1;

    /// <summary>Exit code for an unexpected failure (sysexits' EX_SOFTWARE).</summary>
    public const int InternalError = 70;

    /// <summary>Exit code after Ctrl+C (128 + SIGINT).</summary>
    public const int Cancelled = 130;

    /// <summary>Environment variable that adds the stack trace of an internal error.</summary>
    public const string TraceVariable = "KVFUSION_TRACE";

    /// <summary>Writes the line for <paramref name="error"/> and returns the exit code.</summary>
    public static int Report(Exception error)
    {
        while (error is AggregateException { InnerExceptions.Count: 1 } one)
        {
            error = one.InnerExceptions[0];
        }

        switch (error)
        {
            case OperationCanceledException:
                Write("kvfusion: cancelled");
                return Cancelled;
            case KvFusionException or IOException or UnauthorizedAccessException or DllNotFoundException or CudaException or CudaLibraryNotFoundException:
                Write($"kvfusion: error: {error.Message}");
                return InputError;
            default:
                Write($"kvfusion: internal error: {error.GetType().Name}: {error.Message} (set {TraceVariable}=1 for the stack trace)");
                if (Environment.GetEnvironmentVariable(TraceVariable) == "1")
                {
                    Console.Error.WriteLine(error.ToString());
                }

                return InternalError;
        }
    }

    /// <summary>Writes the command line's parse errors as one line and returns the exit code.</summary>
    public static int ReportParseErrors(ParseResult parse)
    {
        // The root's own name is the host executable (testhost under tests), so it is written as kvfusion.
        var names = new List<string>();
        for (var r = parse.CommandResult; r.Parent is CommandResult parent; r = parent)
        {
            names.Add(r.Command.Name);
        }

        names.Add("kvfusion");
        names.Reverse();
        var command = string.Join(' ', names);
        Write($"kvfusion: error: {string.Join(" ", parse.Errors.Select(e => e.Message))} ('{command} --help' shows the usage)");
        return InputError;
    }

    /// <summary>One line whatever the message holds: a library message with line breaks is joined.</summary>
    private static void Write(string line) =>
        Console.Error.WriteLine(line.ReplaceLineEndings(" "));
}
