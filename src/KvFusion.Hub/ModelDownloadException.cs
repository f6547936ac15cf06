namespace KvFusion.Hub;

/// <summary>What went wrong getting a model.</summary>
public enum ModelDownloadErrorKind
{
    /// <summary>The reference is not <c>hf:OWNER/NAME[@REVISION]</c>.</summary>
    InvalidReference,

    /// <summary>The repository or revision does not exist (or is private and no token was given).</summary>
    NotFound,

    /// <summary>The hub refused the token or the model is gated.</summary>
    Unauthorized,

    /// <summary>Offline and no complete cached snapshot.</summary>
    Offline,

    /// <summary>The hub could not be reached or answered with an error.</summary>
    Network,

    /// <summary>A downloaded file does not match the hub's size or hash.</summary>
    Integrity,

    /// <summary>The repository has no safetensors weights or lacks config.json.</summary>
    UnsupportedModel,

    /// <summary>Another process held the snapshot's lock too long.</summary>
    LockTimeout,
}

/// <summary>A model could not be resolved; the message says what to do.</summary>
public sealed class ModelDownloadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelDownloadException(ModelDownloadErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>Creates an exception of kind <see cref="ModelDownloadErrorKind.Network"/>.</summary>
    public ModelDownloadException()
        : this(ModelDownloadErrorKind.Network, "The model could not be downloaded.")
    {
    }

    /// <summary>Creates an exception of kind <see cref="ModelDownloadErrorKind.Network"/>.</summary>
    public ModelDownloadException(string message)
        : this(ModelDownloadErrorKind.Network, message)
    {
    }

    /// <summary>Creates an exception of kind <see cref="ModelDownloadErrorKind.Network"/>.</summary>
    public ModelDownloadException(string message, Exception inner)
        : this(ModelDownloadErrorKind.Network, message, inner)
    {
    }

    /// <summary>What went wrong.</summary>
    public ModelDownloadErrorKind Kind { get; }
}
