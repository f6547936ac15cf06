using KvFusion.Cache.Chunks;

namespace KvFusion.Cache.Container;

/// <summary>
/// E-cache: the hidden states entering some layers, one [token][hidden] fp16 array per layer, stored after the K/V
/// sections so cross-model sharing can restart a forward at those layers. Immutable once built.
/// </summary>
public sealed class KvHiddenStates
{
    private readonly Half[][] _states;
    private readonly int[] _layers;

    /// <summary>Creates the E-cache of <paramref name="tokenCount"/> tokens.</summary>
    /// <param name="tokenCount">Tokens (the entry's token count).</param>
    /// <param name="hiddenSize">The hidden size.</param>
    /// <param name="layers">The layers whose entering hidden state is stored, strictly increasing, at least one.</param>
    /// <param name="states">One array per layer, [token][hidden].</param>
    /// <exception cref="ArgumentException">The layers are not strictly increasing and non-negative, or an array has the wrong length.</exception>
    public KvHiddenStates(int tokenCount, int hiddenSize, IReadOnlyList<int> layers, IReadOnlyList<Half[]> states)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(states);
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(hiddenSize, 1);
        if (layers.Count == 0 || layers.Count != states.Count)
        {
            throw new ArgumentException($"E-cache needs at least one layer and one array per layer; got {layers.Count} layers and {states.Count} arrays.", nameof(states));
        }

        var expected = (long)tokenCount * hiddenSize;
        _layers = new int[layers.Count];
        _states = new Half[states.Count][];
        for (var i = 0; i < _layers.Length; i++)
        {
            _layers[i] = layers[i];
            if (layers[i] < 0 || (i > 0 && layers[i] <= layers[i - 1]))
            {
                throw new ArgumentException($"E-cache layers must be non-negative and strictly increasing; layer {i} is {layers[i]}.", nameof(layers));
            }

            _states[i] = states[i] ?? throw new ArgumentNullException(nameof(states));
            if (_states[i].LongLength != expected)
            {
                throw new ArgumentException($"E-cache layer {layers[i]} must hold {expected} values ({tokenCount} tokens × {hiddenSize}); it holds {_states[i].LongLength}.", nameof(states));
            }
        }

        TokenCount = tokenCount;
        HiddenSize = hiddenSize;
    }

    /// <summary>Tokens.</summary>
    public int TokenCount { get; }

    /// <summary>The hidden size.</summary>
    public int HiddenSize { get; }

    /// <summary>The layers whose entering hidden state is stored, strictly increasing.</summary>
    public IReadOnlyList<int> Layers => _layers;

    /// <summary>Bytes of the states (fp16).</summary>
    public long ByteSize => (long)_layers.Length * TokenCount * HiddenSize * 2;

    /// <summary>The index of <paramref name="layer"/> in <see cref="Layers"/>, or -1 when its state is not stored.</summary>
    public int IndexOf(int layer) => System.Array.IndexOf(_layers, layer);

    /// <summary>The hidden state entering the <paramref name="index"/>-th stored layer (<see cref="Layers"/>[index]), [token][hidden].</summary>
    public ReadOnlySpan<Half> State(int index) => _states[index];

    internal Half[] Array(int index) => _states[index];
}

/// <summary>Everything a container holds: its header, the K/V entry and the E-cache when it carries one.</summary>
public sealed record KvContainerContents
{
    /// <summary>The header.</summary>
    public required KvContainerHeader Header { get; init; }

    /// <summary>The K/V entry.</summary>
    public required CachedKv Entry { get; init; }

    /// <summary>The E-cache, or null when the container has none.</summary>
    public KvHiddenStates? HiddenStates { get; init; }
}
