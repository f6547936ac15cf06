using System.Globalization;

namespace KvFusion.Cache.Sharing;

/// <summary>
/// The layers a receiver recomputes when it shares a sender's caches: contiguous ranges in increasing order that
/// neither overlap nor touch (touching ranges are one range). Every other layer reuses the sender's K/V as stored;
/// each range starts from the sender's hidden state entering its first layer (the E-cache), or from the receiver's
/// own embedding when it starts at layer 0.
/// </summary>
public sealed class RecomputeRanges : IEquatable<RecomputeRanges>
{
    private readonly LayerRange[] _ranges;

    /// <summary>Creates the set, checking the ranges.</summary>
    /// <exception cref="ArgumentException">A range is reversed or negative, or the ranges are not increasing and apart.</exception>
    public RecomputeRanges(IEnumerable<LayerRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        _ranges = [.. ranges];
        for (var i = 0; i < _ranges.Length; i++)
        {
            var r = _ranges[i];
            if (r.First < 0 || r.Last < r.First)
            {
                throw new ArgumentException($"Layer range {r.First}-{r.Last} is not a range of layers (0 ≤ first ≤ last).", nameof(ranges));
            }

            if (i > 0 && r.First <= _ranges[i - 1].Last + 1)
            {
                throw new ArgumentException($"Layer ranges must increase and be apart: {_ranges[i - 1]} then {r}.", nameof(ranges));
            }
        }
    }

    /// <summary>No layer recomputed: the sender's K/V are used as they are.</summary>
    public static RecomputeRanges None { get; } = new([]);

    /// <summary>Every layer of a model of <paramref name="layerCount"/> layers recomputed (the receiver's own prefill).</summary>
    public static RecomputeRanges All(int layerCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layerCount, 1);
        return new([new LayerRange(0, layerCount - 1)]);
    }

    /// <summary>The ranges, in increasing order.</summary>
    public IReadOnlyList<LayerRange> Ranges => _ranges;

    /// <summary>Layers recomputed in all.</summary>
    public int LayerCount
    {
        get
        {
            var n = 0;
            foreach (var r in _ranges)
            {
                n += r.Count;
            }

            return n;
        }
    }

    /// <summary>The layers whose entering hidden state a sender must store for these ranges (each range's first, but 0).</summary>
    public IReadOnlyList<int> HiddenStateLayers
    {
        get
        {
            var layers = new List<int>(_ranges.Length);
            foreach (var r in _ranges)
            {
                if (r.First > 0)
                {
                    layers.Add(r.First);
                }
            }

            return layers;
        }
    }

    /// <summary>Whether <paramref name="layer"/> is recomputed.</summary>
    public bool Contains(int layer)
    {
        foreach (var r in _ranges)
        {
            if (r.Contains(layer))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Parses <c>none</c>, or comma-separated ranges such as <c>0-1,4</c> (both ends included).</summary>
    /// <exception cref="FormatException">Not that form, or the ranges are not increasing and apart.</exception>
    public static RecomputeRanges Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || string.Equals(trimmed, "none", StringComparison.OrdinalIgnoreCase))
        {
            return None;
        }

        var ranges = new List<LayerRange>();
        foreach (var part in trimmed.Split(',', StringSplitOptions.TrimEntries))
        {
            var ends = part.Split('-', StringSplitOptions.TrimEntries);
            if (ends.Length is < 1 or > 2 || !int.TryParse(ends[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(ends[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var last))
            {
                throw new FormatException($"Invalid layer ranges '{text}': '{part}' is not a layer or a range F-L. Example: 0-1,4.");
            }

            ranges.Add(new LayerRange(first, last));
        }

        try
        {
            return new RecomputeRanges(ranges);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"Invalid layer ranges '{text}': {e.Message}", e);
        }
    }

    /// <summary>Throws unless every range lies within a model of <paramref name="layerCount"/> layers.</summary>
    /// <exception cref="ArgumentException">A range goes past the last layer.</exception>
    public void CheckFits(int layerCount)
    {
        if (_ranges.Length > 0 && _ranges[^1].Last >= layerCount)
        {
            throw new ArgumentException($"Layer range {_ranges[^1]} goes past the model's last layer ({layerCount - 1}).");
        }
    }

    /// <summary><c>none</c>, or the ranges as <c>0-1,4</c>.</summary>
    public override string ToString() => _ranges.Length == 0 ? "none" : string.Join(',', _ranges);

    /// <inheritdoc />
    public bool Equals(RecomputeRanges? other) => other is not null && _ranges.AsSpan().SequenceEqual(other._ranges);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as RecomputeRanges);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        foreach (var r in _ranges)
        {
            hash.Add(r);
        }

        return hash.ToHashCode();
    }
}
