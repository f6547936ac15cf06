using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Blend;

/// <summary>Scores chunk tokens at a check layer: K/V deviation from the stored cache, the query's attention, or both.</summary>
internal static class BlendScorer
{
    /// <summary>Fresh-vs-stored deviation of every row; measured before the layer's fresh K/V are committed.</summary>
    public static float[] Deviation(ForwardPass pass, DeviationTarget target)
    {
        var deviation = new float[pass.RowCount];
        pass.CacheDeviation(target != DeviationTarget.Value, target != DeviationTarget.Key, deviation);
        return deviation;
    }

    /// <summary>Whether <paramref name="criterion"/> needs the query's attention.</summary>
    public static bool UsesAttention(SelectionCriterion criterion) => criterion != SelectionCriterion.Deviation;

    /// <summary>The attention the query rows pay to each cache slot, or null when the criterion does not use it.</summary>
    public static float[]? QueryAttention(ForwardPass pass, InferenceSession session, ReadOnlySpan<int> queryRows, SelectionCriterion criterion)
    {
        if (!UsesAttention(criterion))
        {
            return null;
        }

        var attention = new float[session.Cache.Length];
        pass.QueryAttention(queryRows, attention);
        return attention;
    }

    /// <summary>Scores indexed by row; only the candidates' are set.</summary>
    public static float[] Scores(SelectionCriterion criterion, float[] deviation, float[]? attention, ReadOnlySpan<int> slots, List<int> candidates)
    {
        var scores = new float[slots.Length];
        foreach (var r in candidates)
        {
            scores[r] = criterion switch
            {
                SelectionCriterion.Deviation => deviation[r],
                SelectionCriterion.QueryAttention => attention![slots[r]],
                _ => deviation[r] * attention![slots[r]],
            };
        }

        return scores;
    }

    /// <summary>How many chunk tokens a step keeps: its ratio of all chunk tokens, rounded half away from zero.</summary>
    public static int Budget(double ratio, int totalCandidates) => (int)Math.Round(ratio * totalCandidates, MidpointRounding.AwayFromZero);
}
