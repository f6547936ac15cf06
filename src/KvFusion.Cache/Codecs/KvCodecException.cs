using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Codecs;

/// <summary>
/// A codec cannot decode what it was given: its parameters are invalid for the entry's shape, or a section's payload
/// is corrupt (the message says which and how). The container reader reports it as a corrupt container.
/// </summary>
public sealed class KvCodecException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public KvCodecException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public KvCodecException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception without details.</summary>
    public KvCodecException() : base("The codec cannot decode this data.") { }

    /// <summary>
    /// The id of the codec profile the data was coded with when that profile is what is missing (the data itself is
    /// then valid: it decodes once the profile is loaded); null for every other failure.
    /// </summary>
    public string? MissingProfileId { get; init; }
}
