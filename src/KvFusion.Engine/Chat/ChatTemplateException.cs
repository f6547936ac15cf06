namespace KvFusion.Engine.Chat;

/// <summary>
/// A chat template that cannot be parsed or rendered: a construct the interpreter does not support, a syntax error, a
/// type error while rendering, or the template's own <c>raise_exception(...)</c> (whose message is kept as is).
/// </summary>
public sealed class ChatTemplateException : Exception
{
    /// <summary>Creates an exception at a position of the template source.</summary>
    public ChatTemplateException(string message, int line, int column)
        : base(line > 0 ? $"{message} (template line {line}, column {column})" : message)
    {
        Reason = message;
        Line = line;
        Column = column;
    }

    /// <summary>Creates an exception without a position.</summary>
    public ChatTemplateException()
        : this("The chat template failed.", 0, 0)
    {
    }

    /// <summary>Creates an exception without a position.</summary>
    public ChatTemplateException(string message)
        : this(message, 0, 0)
    {
    }

    /// <summary>Creates an exception without a position, wrapping its cause.</summary>
    public ChatTemplateException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = message;
    }

    /// <summary>The problem without the position suffix (for <c>raise_exception</c>, the template's own message).</summary>
    public string Reason { get; } = "";

    /// <summary>1-based line in the template source, 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>1-based column in the template source, 0 when unknown.</summary>
    public int Column { get; }

    /// <summary>True when the template itself raised the error with <c>raise_exception(...)</c>.</summary>
    public bool RaisedByTemplate { get; init; }
}
