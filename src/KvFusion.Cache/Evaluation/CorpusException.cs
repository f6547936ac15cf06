using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Evaluation;

/// <summary>
/// A corpus that cannot be read (a damaged archive, a document that is not UTF-8), or that cannot give the fusion
/// cases asked of it (too few or too short documents for the options).
/// </summary>
public sealed class CorpusException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public CorpusException(string message) : base(message) { }

    /// <summary>Creates the exception with the error behind it.</summary>
    public CorpusException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public CorpusException() : base("The corpus cannot be used.") { }
}
