using System.Runtime.InteropServices;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Blend;

/// <summary>
/// The rows of a blend pass as selection drops them: which are chunk tokens (candidates for recomputation) and which
/// are query rows. The uncached prefix and the query are never candidates: they are always computed.
/// </summary>
internal sealed class BlendRows
{
    private readonly int _queryLength;
    private readonly List<int> _queryRows = [];
    private bool[] _isCandidate;

    /// <summary>Rows [<paramref name="chunkStart"/>, rowCount - queryLength) are chunk tokens; the last are the query.</summary>
    public BlendRows(int rowCount, int chunkStart, int queryLength)
    {
        _queryLength = queryLength;
        _isCandidate = new bool[rowCount];
        var queryStart = rowCount - queryLength;
        for (var r = chunkStart; r < queryStart; r++)
        {
            _isCandidate[r] = true;
        }

        for (var r = queryStart; r < rowCount; r++)
        {
            _queryRows.Add(r);
        }
    }

    /// <summary>The query's rows in the pass.</summary>
    public ReadOnlySpan<int> QueryRows => CollectionsMarshal.AsSpan(_queryRows);

    /// <summary>The pass's rows split into candidates and rows that are kept anyway, each ascending.</summary>
    public (List<int> Candidates, List<int> Others) Partition(int rowCount)
    {
        var candidates = new List<int>();
        var others = new List<int>();
        for (var r = 0; r < rowCount; r++)
        {
            (_isCandidate[r] ? candidates : others).Add(r);
        }

        return (candidates, others);
    }

    /// <summary>Keeps <paramref name="kept"/> rows of the pass; returns the cache slots of the chunk tokens among them.</summary>
    public List<int> Keep(ForwardPass pass, int[] kept)
    {
        var isCandidate = new bool[kept.Length];
        var selectedSlots = new List<int>();
        for (var i = 0; i < kept.Length; i++)
        {
            isCandidate[i] = _isCandidate[kept[i]];
            if (isCandidate[i])
            {
                selectedSlots.Add(pass.Slots[kept[i]]);
            }
        }

        _isCandidate = isCandidate;
        pass.KeepRows(kept);
        _queryRows.Clear();
        for (var i = kept.Length - _queryLength; i < kept.Length; i++)
        {
            _queryRows.Add(i);
        }

        return selectedSlots;
    }
}
