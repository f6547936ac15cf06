namespace KvFusion.Diagnostics.Rag;

/// <summary>
/// How closely blend's greedy answer follows full prefill's. The models were trained on the corpus, so agreement with
/// the same model's full prefill, not accuracy against the text, is the measure of quality (corpus README).
/// </summary>
public static class RagAgreement
{
    /// <summary>
    /// Tokens of <paramref name="reference"/> that <paramref name="candidate"/> reproduces before the first difference,
    /// over the reference's length: 1 when the candidate starts with the whole reference. Two empty answers agree (1).
    /// </summary>
    public static double SharedPrefix(IReadOnlyList<int> reference, IReadOnlyList<int> candidate)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        if (reference.Count == 0)
        {
            return candidate.Count == 0 ? 1 : 0;
        }

        var shared = 0;
        while (shared < reference.Count && shared < candidate.Count && reference[shared] == candidate[shared])
        {
            shared++;
        }

        return (double)shared / reference.Count;
    }

    /// <summary>
    /// Tokens the two sequences share counted as multisets (order ignored), over the longer one's length: 1 for the
    /// same tokens in any order, 0 for no token in common. Two empty sequences agree (1).
    /// </summary>
    public static double TokenOverlap(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var longer = Math.Max(a.Count, b.Count);
        if (longer == 0)
        {
            return 1;
        }

        var counts = new Dictionary<int, int>();
        foreach (var t in a)
        {
            counts[t] = counts.GetValueOrDefault(t) + 1;
        }

        var shared = 0;
        foreach (var t in b)
        {
            if (counts.GetValueOrDefault(t) is > 0 and var n)
            {
                counts[t] = n - 1;
                shared++;
            }
        }

        return (double)shared / longer;
    }
}
