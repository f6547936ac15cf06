using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Container;

/// <summary>
/// A KV container could not be read: the message is one line that says what was wrong and where,
/// <see cref="Error"/> says which kind of failure it is and <see cref="Offset"/> where it was found.
/// </summary>
public sealed class KvContainerException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">The kind of failure.</param>
    /// <param name="message">One line that says what was wrong.</param>
    /// <param name="offset">The byte offset in the container where it was found, when known.</param>
    /// <param name="innerException">The codec's error behind a <see cref="KvContainerError.CorruptSection"/>.</param>
    public KvContainerException(KvContainerError error, string message, long? offset = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Error = error;
        Offset = offset;
    }

    /// <summary>Creates a <see cref="KvContainerError.Malformed"/> exception.</summary>
    public KvContainerException(string message) : this(KvContainerError.Malformed, message) { }

    /// <summary>Creates a <see cref="KvContainerError.Malformed"/> exception with its cause.</summary>
    public KvContainerException(string message, Exception? innerException) : this(KvContainerError.Malformed, message, null, innerException) { }

    /// <summary>Creates a <see cref="KvContainerError.Malformed"/> exception without details.</summary>
    public KvContainerException() : this(KvContainerError.Malformed, "The KV container is malformed.") { }

    /// <summary>The kind of failure.</summary>
    public KvContainerError Error { get; }

    /// <summary>The byte offset in the container where the failure was found, when known.</summary>
    public long? Offset { get; }
}
