namespace KvFusion.Engine.Errors;

/// <summary>
/// The base of every error KvFusion reports about its input: a model folder (including one whose weights make the
/// model produce non-finite logits), a data file, a request. The message
/// is one line meant for the user and names what was wrong and where; derived types also carry the location as
/// properties. Anything else that escapes the libraries is a bug, not bad input.
/// </summary>
public abstract class KvFusionException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    protected KvFusionException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    protected KvFusionException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without a message (derived types supply their own default).</summary>
    protected KvFusionException() { }

    /// <summary>The file (or folder) the error is about, when there is one.</summary>
    public string? FilePath { get; init; }
}
