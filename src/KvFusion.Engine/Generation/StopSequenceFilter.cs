namespace KvFusion.Engine.Generation;

/// <summary>
/// Cuts generated text at the first stop sequence. Text that could still turn into a stop sequence is held back until
/// the next token decides, so a stream never shows part of a stop sequence. Shared by the service and the chat clients.
/// </summary>
public sealed class StopSequenceFilter
{
    private readonly string[] _stops;
    private string _pending = "";

    /// <summary>A filter cutting at the first of <paramref name="stopSequences"/> (none: text passes as it comes).</summary>
    /// <exception cref="ArgumentException">A stop sequence is null or empty.</exception>
    public StopSequenceFilter(IReadOnlyList<string> stopSequences)
    {
        ArgumentNullException.ThrowIfNull(stopSequences);
        for (var i = 0; i < stopSequences.Count; i++)
        {
            if (string.IsNullOrEmpty(stopSequences[i]))
            {
                throw new ArgumentException($"Stop sequence {i} is empty; stop sequences must be non-empty strings.", nameof(stopSequences));
            }
        }

        _stops = [.. stopSequences];
    }

    /// <summary>Whether a stop sequence was found.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a token's text; returns the text that can be shown now.</summary>
    public string Add(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Stopped)
        {
            return "";
        }

        _pending += text;
        var cut = -1;
        foreach (var stop in _stops)
        {
            var at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
            }
        }

        if (cut >= 0)
        {
            Stopped = true;
            var before = _pending[..cut];
            _pending = "";
            return before;
        }

        var hold = HeldBack();
        var ready = _pending[..^hold];
        _pending = _pending[^hold..];
        return ready;
    }

    /// <summary>The text held back when the generation ends without a stop sequence.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }

    /// <summary>Length of the longest end of the pending text that begins some stop sequence.</summary>
    private int HeldBack()
    {
        var best = 0;
        foreach (var stop in _stops)
        {
            for (var n = Math.Min(stop.Length - 1, _pending.Length); n > best; n--)
            {
                if (_pending.AsSpan(_pending.Length - n).SequenceEqual(stop.AsSpan(0, n)))
                {
                    best = n;
                    break;
                }
            }
        }

        return best;
    }
}
