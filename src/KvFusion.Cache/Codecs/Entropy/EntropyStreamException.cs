using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Codecs.Entropy;

/// <summary>
/// An entropy-coded stream or a serialized frequency table that cannot be decoded: truncated, corrupt, or carrying
/// values outside the format's bounds.
/// </summary>
public sealed class EntropyStreamException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public EntropyStreamException(string message) : base(message) { }

    /// <summary>Creates the exception with the error behind it.</summary>
    public EntropyStreamException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public EntropyStreamException() : base("The entropy-coded stream is corrupt.") { }
}
