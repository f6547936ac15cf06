using System.Runtime.InteropServices;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion.Blend;

/// <summary>
/// The rows of a blend pass as selection drops them: which are chunk tokens (candidates for recomputation), which
/// chunk tokens are always kept (each chunk's first tokens, when asked), and which are query rows. The uncached prefix
/// and the query are never candidates: they are always computed.
/// </summary>
internal sealed class BlendRows
{
    private readonly int _queryLength;
    private readonly List<int> _queryRows = [];
    private bool[] _isChunkToken;
    private bool[] _isForced;

    /// <summary>
    /// Rows [<paramref name="chunkStart"/>, rowCount - queryLength) are chunk tokens, chunk after chunk with the
    /// lengths <paramref name="chunkLengths"/>; the first <paramref name="headTokens"/> of each chunk are always kept.
    /// The last rows are the query.
    /// </summary>
    public BlendRows(int rowCount, int chunkStart, int queryLength, IReadOnlyList<int> chunkLengths, int headTokens)
    {
        _queryLength = queryLength;
        _isChunkToken = new bool[rowCount];
        _isForced = new bool[rowCount];
        var queryStart = rowCount - queryLength;
        for (var r = chunkStart; r < queryStart; r++)
        {
            _isChunkToken[r] = true;
        }

        var first = chunkStart;
        foreach (var length in chunkLengths)
        {
            for (var r = first; r < first + Math.Min(headTokens, length); r++)
            {
                _isForced[r] = true;
                ForcedCount++;
            }

            first += length;
        }

        for (var r = queryStart; r < rowCount; r++)
        {
            _queryRows.Add(r);
        }
    }

    /// <summary>The query's rows in the pass.</summary>
    public ReadOnlySpan<int> QueryRows => CollectionsMarshal.AsSpan(_queryRows);

    /// <summary>Chunk tokens that are kept whatever their score (they count in every step's budget).</summary>
    public int ForcedCount { get; private set; }

    /// <summary>Whether row <paramref name="row"/> is a chunk token.</summary>
    public bool IsChunkToken(int row) => _isChunkToken[row];

    /// <summary>
    /// The pass's rows split into candidates (chunk tokens that selection may drop) and rows that are kept anyway
    /// (uncached prefix, forced chunk tokens, query), each ascending.
    /// </summary>
    public (List<int> Candidates, List<int> Others) Partition(int rowCount)
    {
        var candidates = new List<int>();
        var others = new List<int>();
        for (var r = 0; r < rowCount; r++)
        {
            (_isChunkToken[r] && !_isForced[r] ? candidates : others).Add(r);
        }

        return (candidates, others);
    }

    /// <summary>The pass's rows that are not chunk tokens (layer 0 commits only these when stored K/V are reused).</summary>
    public List<int> OwnRows(int rowCount)
    {
        var own = new List<int>();
        for (var r = 0; r < rowCount; r++)
        {
            if (!_isChunkToken[r])
            {
                own.Add(r);
            }
        }

        return own;
    }

    /// <summary>Keeps <paramref name="kept"/> rows of the pass; returns the cache slots of the chunk tokens among them.</summary>
    public List<int> Keep(ForwardPass pass, int[] kept)
    {
        var isChunkToken = new bool[kept.Length];
        var isForced = new bool[kept.Length];
        var selectedSlots = new List<int>();
        for (var i = 0; i < kept.Length; i++)
        {
            isChunkToken[i] = _isChunkToken[kept[i]];
            isForced[i] = _isForced[kept[i]];
            if (isChunkToken[i])
            {
                selectedSlots.Add(pass.Slots[kept[i]]);
            }
        }

        _isChunkToken = isChunkToken;
        _isForced = isForced;
        pass.KeepRows(kept);
        _queryRows.Clear();
        for (var i = kept.Length - _queryLength; i < kept.Length; i++)
        {
            _queryRows.Add(i);
        }

        return selectedSlots;
    }
}
