using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Sharing;

/// <summary>A sharing profile that cannot be used: unreadable, malformed, or made for another sender/receiver pair.</summary>
public sealed class SharingProfileException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public SharingProfileException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public SharingProfileException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public SharingProfileException() : base("The sharing profile cannot be used.") { }
}
