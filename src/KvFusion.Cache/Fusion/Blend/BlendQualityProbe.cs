using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Blend;

/// <summary>
/// Measures blend's quality signal during its pass: in every layer after the first check layer, the share of the
/// query's attention that lands on chunk tokens left unrecomputed there (whose K/V stay as computed alone), summed over
/// those layers. It needs only the query's attention over the layer's committed cache, a small part of the layer's
/// cost. Weighting each layer by the recomputed tokens' K/V deviation ranked cases about as well, but made the signal
/// grow with the ratio on short prompts, where the gate needs it to fall (docs/decisions.md, "Quality gate").
/// </summary>
internal sealed class BlendQualityProbe(int chunkSlotStart, int chunkSlotCount)
{
    /// <summary>The signal so far.</summary>
    public double Signal { get; private set; }

    /// <summary>Adds this layer's term; call after the layer's K/V are committed and its rows kept.</summary>
    public void Measure(ForwardPass pass, InferenceSession session, BlendRows rows)
    {
        var attention = new float[session.Cache.Length];
        pass.QueryAttention(rows.QueryRows, attention);
        var recomputed = new bool[chunkSlotCount];
        foreach (var slot in pass.Slots)
        {
            var i = slot - chunkSlotStart;
            if ((uint)i < (uint)chunkSlotCount)
            {
                recomputed[i] = true;
            }
        }

        double total = 0, stale = 0;
        for (var s = 0; s < attention.Length; s++)
        {
            total += attention[s];
            var i = s - chunkSlotStart;
            if ((uint)i < (uint)chunkSlotCount && !recomputed[i])
            {
                stale += attention[s];
            }
        }

        Signal += total > 0 ? stale / total : 0;
    }
}
