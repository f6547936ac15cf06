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
    private DeviceTensor? _slotScratch;
    private TransferBuffers? _transfer;
    private int[] _negatedPositions = [];
    private int[] _slotRange = [];

    internal InferenceSession(TransformerModel model, int capacity)
    {
        Model = model;
        Cache = new KvCache(model.Backend, model.Config, model.SessionMemory.CacheCapacity(Math.Min(capacity, model.Config.MaxPositionEmbeddings)), model.SessionMemory);
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
    internal ForwardPass BeginPass(ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
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

    /// <summary>
    /// Writes stored K (before RoPE) and V of <paramref name="count"/> consecutive slots from
    /// <paramref name="firstSlot"/> into a layer of the cache, rotating K to the slots' positions (set them first with
    /// <see cref="KvCache.SetPositions"/>). Both spans are token-major [count, kv_heads·head_dim].
    /// </summary>
    public void ImportKv(int layer, int firstSlot, int count, ReadOnlySpan<float> keysPreRope, ReadOnlySpan<float> values)
    {
        var c = Model.Config;
        CheckTransfer(layer, firstSlot, count, keysPreRope.Length, values.Length);
        var t = EnsureTransfer(count);
        var backend = Model.Backend;
        backend.Upload(Cache.Positions.Slice(firstSlot, count), t.Positions, 0);
        backend.Upload(SlotRange(firstSlot, count), t.Slots, 0);
        backend.Upload(keysPreRope[..(count * c.KvWidth)], t.Keys, 0);
        backend.ApplyRope(t.Keys, count, c.HeadDim, t.Positions, Model.InverseFrequencies, t.Keys);
        backend.ScatterToCache(t.Keys, count, t.Slots, Cache.Keys(layer), Cache.KvHeads, Cache.Capacity);
        backend.Upload(values[..(count * c.KvWidth)], t.Values, 0);
        backend.ScatterToCache(t.Values, count, t.Slots, Cache.Values(layer), Cache.KvHeads, Cache.Capacity);
    }

    /// <summary>
    /// Writes stored half-precision K (before RoPE) and V of <paramref name="count"/> consecutive slots from
    /// <paramref name="firstSlot"/> into every layer of the cache, rotating K to the slots' positions (set them first
    /// with <see cref="KvCache.SetPositions"/>). Both spans have the stored layout [layer][kv_head][token][head_dim]:
    /// the positions go to the backend once, and it widens and rotates each layer where it computes, so a GPU
    /// receives half the bytes of <see cref="ImportKv"/>.
    /// </summary>
    public void ImportKvHalf(int firstSlot, int count, ReadOnlySpan<Half> keysPreRope, ReadOnlySpan<Half> values)
    {
        var c = Model.Config;
        CheckSlots(firstSlot, count);
        var layerValues = count * c.KvWidth;
        if (keysPreRope.Length < (long)c.LayerCount * layerValues || values.Length < (long)c.LayerCount * layerValues)
        {
            throw new ArgumentException($"K and V need {(long)c.LayerCount * layerValues} values each ({c.LayerCount} layers of {layerValues}).");
        }

        var t = EnsureTransfer(count);
        var backend = Model.Backend;
        backend.Upload(Cache.Positions.Slice(firstSlot, count), t.Positions, 0);
        for (var layer = 0; layer < c.LayerCount; layer++)
        {
            backend.ImportHalfToCache(keysPreRope.Slice(layer * layerValues, layerValues), count, Cache.Keys(layer), Cache.KvHeads, Cache.Capacity, firstSlot, t.Positions, Model.InverseFrequencies);
            backend.ImportHalfToCache(values.Slice(layer * layerValues, layerValues), count, Cache.Values(layer), Cache.KvHeads, Cache.Capacity, firstSlot, null, null);
        }
    }

    /// <summary>
    /// Reads K (rotated back to before RoPE) and V of consecutive slots of a layer, token-major
    /// [count, kv_heads·head_dim]: the canonical stored form, ready to be saved.
    /// </summary>
    public void ExportKv(int layer, int firstSlot, int count, Span<float> keysPreRope, Span<float> values)
    {
        var c = Model.Config;
        CheckTransfer(layer, firstSlot, count, keysPreRope.Length, values.Length);
        if (firstSlot + count > Cache.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Slots {firstSlot}..{firstSlot + count - 1} are not all valid (cache length {Cache.Length}).");
        }

        var t = EnsureTransfer(count);
        var backend = Model.Backend;
        var negated = _negatedPositions.Length >= count ? _negatedPositions : _negatedPositions = new int[count];
        var positions = Cache.Positions;
        for (var i = 0; i < count; i++)
        {
            negated[i] = -positions[firstSlot + i];
        }

        backend.Upload(negated.AsSpan(0, count), t.Positions, 0);
        backend.Upload(SlotRange(firstSlot, count), t.Slots, 0);
        backend.GatherFromCache(Cache.Keys(layer), Cache.KvHeads, Cache.Capacity, t.Slots, count, t.Keys);
        backend.ApplyRope(t.Keys, count, c.HeadDim, t.Positions, Model.InverseFrequencies, t.Keys);
        backend.Download(t.Keys, 0, count, keysPreRope);
        backend.GatherFromCache(Cache.Values(layer), Cache.KvHeads, Cache.Capacity, t.Slots, count, t.Values);
        backend.Download(t.Values, 0, count, values);
    }

    /// <summary>Clears the sequence (keeps the allocations).</summary>
    public void Reset() => Cache.Truncate(0);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_buffers is not null)
        {
            Model.SessionMemory.Return(_buffers);
            _buffers = null;
        }

        _slotScratch?.Dispose();
        _transfer?.Dispose();
        Cache.Dispose();
    }

    internal DeviceTensor SlotScratch() => _slotScratch ??= Model.Backend.Allocate(Models.TensorDType.F32, Cache.Capacity, 1);

    internal Span<float> DeviationScratch(int rows)
    {
        if (_deviation.Length < rows)
        {
            _deviation = new float[rows];
        }

        return _deviation.AsSpan(0, rows);
    }

    private void CheckSlots(int firstSlot, int count)
    {
        if (firstSlot < 0 || count <= 0 || firstSlot + count > Cache.Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Slots {firstSlot}..{firstSlot + count - 1} exceed the cache capacity {Cache.Capacity}.");
        }
    }

    private void CheckTransfer(int layer, int firstSlot, int count, int keyLength, int valueLength)
    {
        var width = Model.Config.KvWidth;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)layer, (uint)Model.Config.LayerCount, nameof(layer));
        CheckSlots(firstSlot, count);

        if (keyLength < count * width || valueLength < count * width)
        {
            throw new ArgumentException($"K and V need {count * width} floats each.");
        }
    }

    private ReadOnlySpan<int> SlotRange(int first, int count)
    {
        var slots = _slotRange.Length >= count ? _slotRange : _slotRange = new int[count];
        for (var i = 0; i < count; i++)
        {
            slots[i] = first + i;
        }

        return slots.AsSpan(0, count);
    }

    private TransferBuffers EnsureTransfer(int rows)
    {
        if (_transfer is null || _transfer.Rows < rows)
        {
            _transfer?.Dispose();
            _transfer = new TransferBuffers(Model.Backend, Model.Config.KvWidth, Math.Max(rows, _transfer?.Rows * 2 ?? 0));
        }

        return _transfer;
    }

    private PassBuffers EnsureBuffers(int rows)
    {
        if (_buffers is null || _buffers.Rows < rows)
        {
            var size = Math.Max(rows, _buffers is null ? 1 : Math.Min(_buffers.Rows * 2, Cache.Capacity));
            if (_buffers is not null)
            {
                Model.SessionMemory.Return(_buffers);
            }

            _buffers = Model.SessionMemory.RentPass(SessionMemoryPool.PassRows(size, Cache.Capacity));
        }

        return _buffers;
    }
}

/// <summary>Device scratch for moving canonical K/V in and out of the cache.</summary>
internal sealed class TransferBuffers : IDisposable
{
    public TransferBuffers(ComputeBackend backend, int width, int rows)
    {
        Rows = rows;
        Keys = backend.Allocate(Models.TensorDType.F32, rows, width);
        Values = backend.Allocate(Models.TensorDType.F32, rows, width);
        Positions = backend.Allocate(Models.TensorDType.I32, rows, 1);
        Slots = backend.Allocate(Models.TensorDType.I32, rows, 1);
    }

    public int Rows { get; }

    public DeviceTensor Keys { get; }

    public DeviceTensor Values { get; }

    public DeviceTensor Positions { get; }

    public DeviceTensor Slots { get; }

    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
        Positions.Dispose();
        Slots.Dispose();
    }
}
