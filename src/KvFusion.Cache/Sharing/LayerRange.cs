using System.Globalization;

namespace KvFusion.Cache.Sharing;

/// <summary>A contiguous range of layers, both ends included, that a receiver recomputes when it shares a sender's KV.</summary>
/// <param name="First">The first layer recomputed.</param>
/// <param name="Last">The last layer recomputed (at least <paramref name="First"/>).</param>
public readonly record struct LayerRange(int First, int Last)
{
    /// <summary>Layers in the range.</summary>
    public int Count => Last - First + 1;

    /// <summary>Whether <paramref name="layer"/> is in the range.</summary>
    public bool Contains(int layer) => layer >= First && layer <= Last;

    /// <summary><c>F-L</c>, or <c>F</c> for one layer.</summary>
    public override string ToString() => First == Last
        ? First.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{First}-{Last}");
}
