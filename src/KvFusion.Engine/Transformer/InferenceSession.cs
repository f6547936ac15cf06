using KvFusion.Engine.Compute;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// One sequence being computed: its KV cache and reusable scratch. Not thread-safe; use one session per concurrent
/// request. <see cref="BeginPass"/> is the general mechanism; <see cref="Prefill"/> and <see cref="Decode"/> are the
/// plain uses of it.
/// </summary>
public sealed class InferenceSession : IDisposable
{
    /// <summary>Rows per prefill pass: long prompts are computed in chunks of this many tokens (same result, bounded scratch).</summary>
    public const int DefaultPrefillChunk = 512;

    private PassBuffers? _buffers;
    private ForwardPass? _pass;
    private float[] _deviation = [];

    internal InferenceSession(TransformerModel model, int capacity)
    {
        Model = model;
        Cache = new KvCache(model.Backend, model.Config, Math.Min(capacity, model.Config.MaxPositionEmbeddings));
    }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>The working KV cache.</summary>
    public KvCache Cache { get; }

    /// <summary>Tokens in the cache (the next slot).</summary>
    public int Length => Cache.Length;

    /// <summary>
    /// Starts a layer-stepped pass over rows with these token ids, cache slots and positions (the embedding is looked
    /// up and the slots' positions are recorded). A session has one pass at a time; starting another ends the last.
    /// </summary>
    public ForwardPass BeginPass(ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("A pass needs at least one row.", nameof(tokens));
        }

        var buffers = EnsureBuffers(tokens.Length);
        _pass ??= new ForwardPass(this, buffers);
        _pass.Reset(buffers, tokens, slots, positions);
        return _pass;
    }

    /// <summary>
    /// Appends tokens to the sequence (slots and positions continue from <see cref="Length"/>) and writes the last
    /// token's next-token logits. Computed in chunks of <paramref name="chunk"/> rows.
    /// </summary>
    public void Prefill(ReadOnlySpan<int> tokens, Span<float> lastLogits, int chunk = DefaultPrefillChunk, CancellationToken cancellationToken = default)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("Nothing to prefill.", nameof(tokens));
        }

        if (Length + tokens.Length > Cache.Capacity)
        {
            throw new ArgumentException($"{Length + tokens.Length} tokens exceed the session's capacity of {Cache.Capacity}.", nameof(tokens));
        }

        chunk = Math.Max(1, chunk);
        var slots = new int[Math.Min(chunk, tokens.Length)];
        for (var start = 0; start < tokens.Length; start += chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(chunk, tokens.Length - start);
            var s = slots.AsSpan(0, n);
            var first = Length;
            for (var i = 0; i < n; i++)
            {
                s[i] = first + i;
            }

            var pass = BeginPass(tokens.Slice(start, n), s, s);
            pass.RunRemainingLayers();
            if (start + n == tokens.Length)
            {
                pass.ComputeLogits(n - 1, lastLogits);
            }
        }
    }

    /// <summary>Appends one token and writes its next-token logits. Allocates nothing.</summary>
    public void Decode(int token, Span<float> logits)
    {
        if (Length >= Cache.Capacity)
        {
            throw new InvalidOperationException($"The session is full ({Cache.Capacity} tokens).");
        }

        Span<int> one = [token];
        Span<int> slot = [Length];
        var pass = BeginPass(one, slot, slot);
        pass.RunRemainingLayers();
        pass.ComputeLogits(0, logits);
    }

    /// <summary>Clears the sequence (keeps the allocations).</summary>
    public void Reset() => Cache.Truncate(0);

    /// <inheritdoc />
    public void Dispose()
    {
        _buffers?.Dispose();
        Cache.Dispose();
    }

    internal Span<float> DeviationScratch(int rows)
    {
        if (_deviation.Length < rows)
        {
            _deviation = new float[rows];
        }

        return _deviation.AsSpan(0, rows);
    }

    private PassBuffers EnsureBuffers(int rows)
    {
        if (_buffers is null || _buffers.Rows < rows)
        {
            var size = Math.Max(rows, _buffers is null ? 1 : Math.Min(_buffers.Rows * 2, Cache.Capacity));
            _buffers?.Dispose();
            _buffers = new PassBuffers(Model.Backend, Model.Config, Math.Max(size, rows));
        }

        return _buffers;
    }
}
