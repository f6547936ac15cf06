namespace KvFusion.Cache.Fusion.Blend;

/// <summary>Collects what blend's selection did, for the report: counts per check layer, kept slots, deviation means.</summary>
internal sealed class BlendReportBuilder(int totalCandidates)
{
    private readonly List<(int Layer, int Selected, int Candidates)> _selection = [];
    private IReadOnlyList<int> _selectedSlots = [];
    private (double Selected, double Unselected)? _deviationMeans;

    /// <summary>All chunk tokens of the prompt: the base of every step's ratio.</summary>
    public int TotalCandidates => totalCandidates;

    /// <summary>Records a check layer's selection: <paramref name="kept"/> rows of the pass before <paramref name="rows"/> drops the others.</summary>
    public void RecordCheck(int layer, int[] kept, BlendRows rows, float[] deviation)
    {
        var keptSet = new HashSet<int>(kept);
        double sel = 0, unsel = 0;
        int ns = 0, nu = 0;
        for (var r = 0; r < deviation.Length; r++)
        {
            if (!rows.IsChunkToken(r))
            {
                continue;
            }

            if (keptSet.Contains(r))
            {
                sel += deviation[r];
                ns++;
            }
            else
            {
                unsel += deviation[r];
                nu++;
            }
        }

        _selection.Add((layer, ns, totalCandidates));
        _deviationMeans = (ns > 0 ? sel / ns : 0, nu > 0 ? unsel / nu : 0);
    }

    /// <summary>Records the cache slots of the chunk tokens the check layer kept.</summary>
    public void RecordKeptSlots(IReadOnlyList<int> slots) => _selectedSlots = slots;

    /// <summary>The report with the selection added; the last check layer's slots and means are the ones reported.</summary>
    public FusionReport Complete(FusionReport report) => report with
    {
        Selection = _selection,
        SelectedSlots = _selectedSlots,
        DeviationMeans = _deviationMeans,
    };
}
