namespace KvFusion.Cache.Codecs;

/// <summary>
/// The shape of one section's values: <paramref name="Heads"/> × <paramref name="Tokens"/> × <paramref name="Width"/>,
/// the last index fastest. K and V sections are [kv_head][token][head_dim]; an E-cache section is one head of
/// [token][hidden].
/// </summary>
/// <param name="Layer">The layer the section belongs to (0-based).</param>
/// <param name="Kind">K, V or hidden states.</param>
/// <param name="Heads">KV heads (1 for hidden states).</param>
/// <param name="Tokens">Tokens.</param>
/// <param name="Width">Head dim (the hidden size for hidden states).</param>
public readonly record struct KvSectionShape(int Layer, KvSectionKind Kind, int Heads, int Tokens, int Width)
{
    /// <summary>Values in the section.</summary>
    public long ValueCount => (long)Heads * Tokens * Width;

    /// <summary>Channels per token (heads × width): the values of one token across all heads.</summary>
    public int Channels => Heads * Width;
}
