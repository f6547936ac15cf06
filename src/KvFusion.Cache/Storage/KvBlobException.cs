using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Storage;

/// <summary>A stored blob cannot be used as it is (for example, it is larger than the store hands out); the message says why.</summary>
public sealed class KvBlobException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public KvBlobException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public KvBlobException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public KvBlobException() : base("The stored blob cannot be used.") { }
}
