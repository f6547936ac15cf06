using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Tiers;

/// <summary>A tier cannot serve the operation now (down, unreachable, timed out); the message names the tier and why.</summary>
public sealed class KvTierUnavailableException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public KvTierUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public KvTierUnavailableException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public KvTierUnavailableException() : base("The storage tier is unavailable.") { }
}
