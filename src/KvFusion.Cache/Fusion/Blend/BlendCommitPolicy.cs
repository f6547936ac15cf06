using System.Runtime.InteropServices;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Blend;

/// <summary>Which rows' fresh K/V a blend pass writes into the cache at each layer; the others keep the stored K/V.</summary>
internal sealed class BlendCommitPolicy(BlendOptions options)
{
    /// <summary>
    /// At a check layer, before scoring: writes every row's fresh K/V when asked to, or when the query ranks by
    /// attention (it should attend to fresh keys, which are computed anyway). Returns whether it wrote them.
    /// </summary>
    public bool CommitBeforeScoring(ForwardPass pass, int layer, SelectionCriterion criterion)
    {
        if (!options.WriteAllAtCheckLayer && !BlendScorer.UsesAttention(criterion))
        {
            return false;
        }

        pass.CommitKv(layer);
        return true;
    }

    /// <summary>At a check layer, after selection: writes the kept rows' fresh K/V unless all were written.</summary>
    public static void CommitAfterSelection(ForwardPass pass, int layer, int[] kept, bool committedAll)
    {
        if (!committedAll)
        {
            pass.CommitKv(layer, kept);
        }
    }

    /// <summary>At any other layer: every row's, except chunk tokens at layer 0 when the stored (exact) K/V are reused.</summary>
    public void CommitLayer(ForwardPass pass, int layer, BlendRows rows)
    {
        if (layer == 0 && options.ReuseLayerZero)
        {
            // Layer 0's K/V depend only on the token: the stored ones are exact, keep them.
            pass.CommitKv(layer, CollectionsMarshal.AsSpan(rows.OwnRows(pass.RowCount)));
        }
        else
        {
            pass.CommitKv(layer);
        }
    }
}
