using KvFusion.Cache.Container;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// What it would cost to compute a stored entry again, in the units the host-memory tier weighs entries by: the fp16
/// bytes of its K and V (proportional to layers × tokens × KV width, i.e. to the projection work of a prefill), times
/// <c>1 + tokens / 2048</c> for attention, whose work per token grows with the tokens before it. Per byte held this is
/// about 1 for an uncompressed short chunk and grows with the codec's ratio and the chunk's length.
/// </summary>
public static class KvRecomputeCost
{
    /// <summary>Tokens at which attention costs as much again as the projections (a coarse constant; only ratios between entries matter).</summary>
    public const double AttentionTokenScale = 2048;

    /// <summary>The cost of an entry of <paramref name="header"/>'s shape.</summary>
    public static double Of(KvContainerHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        var fp16Bytes = 4.0 * header.LayerCount * header.KvHeads * header.HeadDim * header.TokenCount;
        return fp16Bytes * (1 + (header.TokenCount / AttentionTokenScale));
    }

    /// <summary>
    /// The cost of the entry a blob holds, read from its header; a blob that is not a container is weighed as if it
    /// were an uncompressed one of its size (cost = bytes).
    /// </summary>
    public static double OfBlob(ReadOnlySpan<byte> blob)
    {
        try
        {
            return Of(KvContainerReader.ReadHeader(blob));
        }
        catch (KvContainerException)
        {
            return blob.Length;
        }
    }
}
