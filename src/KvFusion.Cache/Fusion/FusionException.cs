using KvFusion.Engine.Errors;

namespace KvFusion.Cache.Fusion;

/// <summary>Why a fusion request was refused.</summary>
public enum FusionError
{
    /// <summary>A chunk id is not in the store.</summary>
    UnknownChunk,

    /// <summary>A stored chunk was computed by another model or tokenizer.</summary>
    ModelMismatch,

    /// <summary>The query is empty.</summary>
    EmptyQuery,

    /// <summary>The prompt does not fit the model's context.</summary>
    ContextOverflow,

    /// <summary>The request is malformed (e.g. a chunk with neither id, text nor tokens).</summary>
    InvalidRequest,

    /// <summary>A shared cache's sender is not of the receiver's family (architecture, shapes or tokenizer differ).</summary>
    IncompatibleModels,

    /// <summary>A shared chunk lacks the E-cache layer a recompute range starts at.</summary>
    MissingHiddenState,

    /// <summary>The prompt and the tokens to generate need more KV memory than the engine's whole budget.</summary>
    KvMemoryExceeded,
}

/// <summary>A fusion request that cannot be served; nothing was stored for it. <see cref="Error"/> says why.</summary>
public sealed class FusionException : KvFusionException
{
    /// <summary>Creates the exception.</summary>
    public FusionException(FusionError error, string message) : base(message) => Error = error;

    /// <summary>Creates the exception without details.</summary>
    public FusionException() : base("The fusion request cannot be served.") => Error = FusionError.InvalidRequest;

    /// <summary>Creates the exception with an inner error.</summary>
    public FusionException(string message, Exception innerException) : base(message, innerException) => Error = FusionError.InvalidRequest;

    /// <summary>Creates the exception with a message.</summary>
    public FusionException(string message) : base(message) => Error = FusionError.InvalidRequest;

    /// <summary>The kind of error.</summary>
    public FusionError Error { get; }
}
