using System.Collections.Concurrent;
using KvFusion.Cache.Codecs.Entropy;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// The inline statistics of the cachegen codec: per channel, a two-sided geometric distribution over the symbols,
/// p(s) ∝ θ^|s − center|, named by two bytes (center, spread). The table is built with integer arithmetic only, so
/// every decoder in any language gets the same frequencies; tables are cached per (alphabet, center, spread).
/// </summary>
/// <remarks>
/// θ = (spread + 0.5) / 64 in Q16: θq = 1024 · spread + 512. The weight of the center is 2^16; moving one symbol away
/// multiplies by θq and shifts right by 16, never going below 1, so every symbol of the alphabet stays encodable. The
/// weights are normalized to 2^12 by <see cref="SymbolFrequencies.FromCounts"/>.
/// </remarks>
internal static class GeometricTables
{
    public const int SpreadSteps = 64;

    /// <summary>The inline tables' scale: part of the format (every decoder must build the same table).</summary>
    public const int ScaleBits = 12;

    private const int CacheLimit = 1 << 16;

    private static readonly ConcurrentDictionary<int, RansRunTable> Cache = new();

    /// <summary>The table of a channel.</summary>
    /// <exception cref="KvCodecException">The center is outside the alphabet or the spread is above 63.</exception>
    public static RansRunTable Get(int alphabet, int center, int spread)
    {
        if ((uint)center >= (uint)alphabet || (uint)spread >= SpreadSteps)
            throw new KvCodecException($"A channel's statistics are center {center}, spread {spread}; the center must be below {alphabet} and the spread below {SpreadSteps}.");
        var key = (alphabet << 16) | (center << 8) | spread;
        if (Cache.TryGetValue(key, out var table))
            return table;
        table = Build(alphabet, center, spread);
        if (Cache.Count < CacheLimit)
            Cache.TryAdd(key, table);
        return table;
    }

    /// <summary>Fits (center, spread) to a channel's symbols (column <paramref name="channel"/> of token-major rows of
    /// <paramref name="channels"/>): the rounded mean, and θ from the mean distance to it (the maximum-likelihood θ
    /// of a geometric distance is m / (1 + m)).</summary>
    public static (byte Center, byte Spread) Fit(ReadOnlySpan<byte> rows, int channel, int channels, int alphabet)
    {
        var count = rows.Length / channels;
        long sum = 0;
        for (var i = channel; i < rows.Length; i += channels)
            sum += rows[i];
        var center = (int)Math.Clamp((sum + (count / 2)) / count, 0, alphabet - 1);
        long distance = 0;
        for (var i = channel; i < rows.Length; i += channels)
            distance += Math.Abs(rows[i] - center);
        var m = (double)distance / count;
        var theta = m / (1 + m);
        var spread = (int)Math.Clamp(Math.Round((theta * SpreadSteps) - 0.5), 0, SpreadSteps - 1);
        return ((byte)center, (byte)spread);
    }

    private static RansRunTable Build(int alphabet, int center, int spread)
    {
        Span<long> weights = stackalloc long[alphabet];
        var theta = (1024L * spread) + 512;
        long w = 1 << 16;
        weights[center] = w;
        for (var k = 1; center - k >= 0 || center + k < alphabet; k++)
        {
            w = Math.Max(1, (w * theta) >> 16);
            if (center - k >= 0)
                weights[center - k] = w;
            if (center + k < alphabet)
                weights[center + k] = w;
        }

        return new RansRunTable(SymbolFrequencies.FromCounts(weights, ScaleBits));
    }
}
