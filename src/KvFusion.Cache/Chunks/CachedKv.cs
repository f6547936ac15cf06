using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Chunks;

/// <summary>
/// KV of a run of tokens in the canonical stored form (DESIGN.md): per layer, K before RoPE and V, as
/// [kv_head][token][head_dim] fp16, plus what they belong to. Immutable once built.
/// </summary>
public sealed class CachedKv
{
    private readonly Half[] _keys;
    private readonly Half[] _values;

    /// <summary>Creates an entry; the arrays hold [layer][kv_head][token][head_dim].</summary>
    public CachedKv(CacheKey key, string modelFingerprint, string tokenizerFingerprint, int[] tokens, int layerCount, int kvHeads, int headDim, Half[] keys, Half[] values)
        : this(key, modelFingerprint, tokenizerFingerprint, tokens ?? throw new ArgumentNullException(nameof(tokens)), tokens.Length, layerCount, kvHeads, headDim, keys, values)
    {
    }

    /// <summary>
    /// Creates an entry whose token ids may be unknown (a container written without them): <paramref name="tokens"/>
    /// null gives an empty <see cref="Tokens"/> and <see cref="HasTokenIds"/> false, with <paramref name="tokenCount"/> tokens.
    /// </summary>
    internal CachedKv(CacheKey key, string modelFingerprint, string tokenizerFingerprint, int[]? tokens, int tokenCount, int layerCount, int kvHeads, int headDim, Half[] keys, Half[] values)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (tokens is not null && tokens.Length != tokenCount)
        {
            throw new ArgumentException($"{tokens.Length} token ids for {tokenCount} tokens.", nameof(tokens));
        }

        var expected = (long)layerCount * kvHeads * tokenCount * headDim;
        if (keys.LongLength != expected || values.LongLength != expected)
        {
            throw new ArgumentException($"K and V must hold {expected} values ({layerCount} layers × {kvHeads} heads × {tokenCount} tokens × {headDim}).");
        }

        Key = key;
        ModelFingerprint = modelFingerprint;
        TokenizerFingerprint = tokenizerFingerprint;
        Tokens = tokens ?? [];
        HasTokenIds = tokens is not null;
        TokenCount = tokenCount;
        LayerCount = layerCount;
        KvHeads = kvHeads;
        HeadDim = headDim;
        _keys = keys;
        _values = values;
    }

    /// <summary>The entry's key.</summary>
    public CacheKey Key { get; }

    /// <summary>The same KV under another key (sharing its arrays): a stored level of the chunk.</summary>
    internal CachedKv WithKey(CacheKey key) =>
        new(key, ModelFingerprint, TokenizerFingerprint, HasTokenIds ? [.. Tokens] : null, TokenCount, LayerCount, KvHeads, HeadDim, _keys, _values);

    /// <summary>Fingerprint of the model that computed it.</summary>
    public string ModelFingerprint { get; }

    /// <summary>Fingerprint of the tokenizer.</summary>
    public string TokenizerFingerprint { get; }

    /// <summary>The tokens whose KV this is; empty when <see cref="HasTokenIds"/> is false.</summary>
    public IReadOnlyList<int> Tokens { get; }

    /// <summary>Whether <see cref="Tokens"/> holds the token ids (false for a container read without them).</summary>
    public bool HasTokenIds { get; }

    /// <summary>Layers.</summary>
    public int LayerCount { get; }

    /// <summary>KV heads.</summary>
    public int KvHeads { get; }

    /// <summary>Head dimension.</summary>
    public int HeadDim { get; }

    /// <summary>Tokens.</summary>
    public int TokenCount { get; }

    /// <summary>Bytes of K and V, and of the E-cache when there is one.</summary>
    public long ByteSize => ((_keys.LongLength + _values.LongLength) * 2) + (HiddenStates?.ByteSize ?? 0);

    /// <summary>
    /// The E-cache stored with this entry: the hidden states entering some layers, from which a compatible receiver
    /// model restarts its forward when it shares this cache; null for an entry stored without.
    /// </summary>
    public KvHiddenStates? HiddenStates { get; private init; }

    /// <summary>This entry with <paramref name="hiddenStates"/> as its E-cache (the K/V arrays are shared, not copied).</summary>
    /// <exception cref="ArgumentException">The E-cache is not of this entry's token count, or names a layer it does not have.</exception>
    public CachedKv WithHiddenStates(KvHiddenStates? hiddenStates)
    {
        if (hiddenStates is not null)
        {
            if (hiddenStates.TokenCount != TokenCount)
            {
                throw new ArgumentException($"The E-cache holds {hiddenStates.TokenCount} tokens; the entry has {TokenCount}.", nameof(hiddenStates));
            }

            if (hiddenStates.Layers[^1] >= LayerCount)
            {
                throw new ArgumentException($"The E-cache names layer {hiddenStates.Layers[^1]}; the entry has {LayerCount} layers.", nameof(hiddenStates));
            }
        }

        return new CachedKv(Key, ModelFingerprint, TokenizerFingerprint, HasTokenIds ? [.. Tokens] : null, TokenCount, LayerCount, KvHeads, HeadDim, _keys, _values)
        {
            HiddenStates = hiddenStates,
        };
    }

    /// <summary>All K values, [layer][kv_head][token][head_dim].</summary>
    public ReadOnlySpan<Half> Keys => _keys;

    /// <summary>All V values, [layer][kv_head][token][head_dim].</summary>
    public ReadOnlySpan<Half> Values => _values;

    /// <summary>Number of values per layer (of K or of V).</summary>
    public int LayerStride => KvHeads * TokenCount * HeadDim;

    /// <summary>Writes one layer's K or V token-major ([token][kv_head·head_dim]) as float32, as the engine takes it.</summary>
    public void CopyLayerTokenMajor(int layer, bool keys, Span<float> destination)
    {
        var src = (keys ? _keys : _values).AsSpan(layer * LayerStride, LayerStride);
        var n = TokenCount;
        var width = KvHeads * HeadDim;
        for (var h = 0; h < KvHeads; h++)
        {
            for (var t = 0; t < n; t++)
            {
                Engine.Compute.FloatConversion.ToSingle(
                    src.Slice(((h * n) + t) * HeadDim, HeadDim), destination.Slice((t * width) + (h * HeadDim), HeadDim));
            }
        }
    }

    /// <summary>Builds the canonical layout from token-major float32 layers ([token][kv_head·head_dim]).</summary>
    public static void StoreLayerTokenMajor(ReadOnlySpan<float> source, int tokenOffset, int tokens, int kvHeads, int headDim, Span<Half> layerDestination)
    {
        var width = kvHeads * headDim;
        for (var h = 0; h < kvHeads; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                var s = source.Slice(((tokenOffset + t) * width) + (h * headDim), headDim);
                var d = layerDestination.Slice(((h * tokens) + t) * headDim, headDim);
                for (var i = 0; i < headDim; i++)
                {
                    d[i] = (Half)s[i];
                }
            }
        }
    }
}
