namespace KvFusion.Cache.Container;

/// <summary>What was wrong with a KV container.</summary>
public enum KvContainerError
{
    /// <summary>The bytes end before the container does (a preamble, header, frame or payload is cut short).</summary>
    Truncated,

    /// <summary>The first eight bytes are not the container magic: not a container, or mangled in transfer.</summary>
    BadMagic,

    /// <summary>A format version or preamble flag this reader does not know.</summary>
    UnsupportedVersion,

    /// <summary>The header's xxHash64 does not match its bytes.</summary>
    HeaderChecksumMismatch,

    /// <summary>A section payload's xxHash64 does not match its bytes.</summary>
    SectionChecksumMismatch,

    /// <summary>A length or count is above the reader's <see cref="KvContainerLimits"/>.</summary>
    LimitExceeded,

    /// <summary>A field holds a value the format does not allow (checksums matched, so the writer produced it).</summary>
    Malformed,

    /// <summary>Bytes follow the last section.</summary>
    TrailingData,

    /// <summary>The codec (kind and level) is not one this build can decode.</summary>
    UnknownCodec,

    /// <summary>A section's checksum matched but its codec could not decode it.</summary>
    CorruptSection,

    /// <summary>Layers, KV heads or head dimension differ from what the caller expected.</summary>
    ShapeMismatch,

    /// <summary>The model or tokenizer fingerprint differs from what the caller expected.</summary>
    FingerprintMismatch,

    /// <summary>The container is valid but names a codec profile the reader was not given (load the profile).</summary>
    MissingProfile,
}
