using System.Globalization;

namespace KvFusion.Engine.Errors;

/// <summary>
/// A line-oriented data file (JSON lines of fusion cases, chunks to ask over) that cannot be read. The message is
/// <c>FILE:LINE: FIELD: problem</c>, with the parts that are known.
/// </summary>
public sealed class InputFileException : KvFusionException
{
    /// <summary>Creates the exception for a problem at a place in a file.</summary>
    /// <param name="filePath">The file.</param>
    /// <param name="lineNumber">1-based line, or null when the problem is with the whole file.</param>
    /// <param name="field">The JSON field or element (e.g. <c>query</c>, <c>chunks[1]</c>), or null.</param>
    /// <param name="problem">What is wrong, as a sentence.</param>
    /// <param name="innerException">The parser's own error, if any.</param>
    public InputFileException(string filePath, int? lineNumber, string? field, string problem, Exception? innerException = null)
        : base(Format(filePath, lineNumber, field, problem), innerException)
    {
        FilePath = filePath;
        LineNumber = lineNumber;
        Field = field;
        Problem = problem;
    }

    /// <summary>Creates the exception with a message only (prefer the located constructor).</summary>
    public InputFileException(string message) : base(message) => Problem = message;

    /// <summary>Creates the exception with a message and cause only (prefer the located constructor).</summary>
    public InputFileException(string message, Exception innerException) : base(message, innerException) => Problem = message;

    /// <summary>Creates the exception without details.</summary>
    public InputFileException() : base("The input file cannot be read.") => Problem = Message;

    /// <summary>1-based line of the problem, or null.</summary>
    public int? LineNumber { get; }

    /// <summary>The JSON field or element that is wrong, or null.</summary>
    public string? Field { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    private static string Format(string filePath, int? lineNumber, string? field, string problem)
    {
        var at = lineNumber is { } n ? string.Create(CultureInfo.InvariantCulture, $"{filePath}:{n}") : filePath;
        return field is null ? $"{at}: {problem}" : $"{at}: '{field}': {problem}";
    }
}
