namespace KvFusion.Engine.Models;

/// <summary>
/// A model directory or file that cannot be used: missing, malformed, inconsistent or unsupported. The message
/// names the file and the problem.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelLoadException(string message) : base(message) { }

    /// <summary>Creates the exception with the error that caused it.</summary>
    public ModelLoadException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without a message (prefer the other constructors).</summary>
    public ModelLoadException() : base("The model could not be loaded.") { }
}
