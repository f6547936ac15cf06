using KvFusion.Engine.Errors;

namespace KvFusion.Server.Inference;

/// <summary>The configured models cannot be served together (another family, one id twice, a profile for a pair not served).</summary>
public sealed class ServedModelsException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public ServedModelsException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ServedModelsException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ServedModelsException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
