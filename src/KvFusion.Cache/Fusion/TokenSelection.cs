namespace KvFusion.Cache.Fusion;

/// <summary>Top-k selection of candidate rows by score, deterministic on ties (lower row first).</summary>
public static class TokenSelection
{
    /// <summary>
    /// Returns, ascending, the rows to keep: every row of <paramref name="mustKeep"/> and the <paramref name="k"/>
    /// candidates with the highest <paramref name="scores"/> (indexed by row).
    /// </summary>
    public static int[] Select(ReadOnlySpan<float> scores, ReadOnlySpan<int> candidates, int k, ReadOnlySpan<int> mustKeep)
    {
        k = Math.Clamp(k, 0, candidates.Length);
        var order = candidates.ToArray();
        var keys = new float[scores.Length];
        for (var i = 0; i < scores.Length; i++)
        {
            keys[i] = float.IsNaN(scores[i]) ? float.NegativeInfinity : scores[i];
        }

        // Sort by score descending, then by row ascending.
        Array.Sort(order, (a, b) =>
        {
            var c = keys[b].CompareTo(keys[a]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var keep = new int[k + mustKeep.Length];
        order.AsSpan(0, k).CopyTo(keep);
        mustKeep.CopyTo(keep.AsSpan(k));
        Array.Sort(keep);
        return keep;
    }
}
