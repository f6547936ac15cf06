using System.Globalization;
using KvFusion.Cli.Commands;
using KvFusion.Cli.Tests.Commands;
using KvFusion.Cuda.Interop;
using KvFusion.Engine.Models;

namespace KvFusion.Cli.Tests;

/// <summary>
/// Review: ErrorReport reported InvalidOperationException, ArgumentException, FormatException and
/// NotSupportedException as bad input (exit 1, "kvfusion: error:"), hiding bugs as input errors. Only typed
/// KvFusion errors, file-system errors and a missing GPU are input errors; anything else is an internal error.
/// </summary>
[Collection(ConsoleCommands.Name)]
public sealed class ErrorReportTests
{
    private static (int Code, string Line) Report(Exception error)
    {
        var stderr = new StringWriter(CultureInfo.InvariantCulture);
        var old = Console.Error;
        Console.SetError(stderr);
        try
        {
            var code = ErrorReport.Report(error);
            return (code, Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
        }
        finally
        {
            Console.SetError(old);
        }
    }

    public static TheoryData<Exception> Bugs() =>
    [
        new InvalidOperationException("Cannot transcode invalid UTF-8."),
        new ArgumentException("bad argument"),
        new ArgumentOutOfRangeException("count", 0, "out of range"),
        new FormatException("bad format"),
        new NotSupportedException("not supported"),
        new KeyNotFoundException("no such key"),
        new AggregateException(new InvalidOperationException("inside a task")),
    ];

    [Theory]
    [MemberData(nameof(Bugs))]
    public void Framework_exception_is_an_internal_error_with_exit_code_70(Exception error)
    {
        var (code, line) = Report(error);
        Assert.Equal(ErrorReport.InternalError, code);
        var inner = error is AggregateException a ? a.InnerExceptions[0] : error;
        Assert.StartsWith($"kvfusion: internal error: {inner.GetType().Name}: {inner.Message.ReplaceLineEndings(" ")}", line, StringComparison.Ordinal);
    }

    public static TheoryData<Exception> InputErrors() =>
    [
        new CliException("--threads must be at least 1, got 0."),
        new ModelLoadException("config.json: broken"),
        new FileNotFoundException("no such file"),
        new UnauthorizedAccessException("denied"),
        new CudaException("no CUDA device"),
        new CudaLibraryNotFoundException("libcuda.so.1 not found"),
    ];

    [Theory]
    [MemberData(nameof(InputErrors))]
    public void Typed_file_and_gpu_errors_are_one_line_input_errors_with_exit_code_1(Exception error)
    {
        var (code, line) = Report(error);
        Assert.Equal(ErrorReport.InputError, code);
        Assert.Equal($"kvfusion: error: {error.Message}", line);
    }

    [Fact]
    public void Cancellation_exits_with_130() =>
        Assert.Equal((ErrorReport.Cancelled, "kvfusion: cancelled"), Report(new OperationCanceledException()));
}
