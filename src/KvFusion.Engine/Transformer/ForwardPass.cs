using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// One layer-stepped forward pass over a set of token rows of a session. The caller chooses, layer by layer, what
/// happens: compute q/k/v, read or compare the fresh K/V, write them into the cache (all rows or some), finish the
/// layer (attention over the whole cache, MLP), and drop rows that later layers need not compute. Full prefill,
/// decode and fusion are all sequences of these steps (see <see cref="RunLayer"/> for the plain one).
/// <para>
/// A pass is over one session's rows, or over the rows of several sessions at once (<see cref="SequenceBatch"/>):
/// then the projections and the MLP run as one GEMM over all rows, and K/V writes and attention run per sequence
/// over its own cache. The steps that inspect or select rows (deviation, query attention, partial commits, keeping
/// rows, restarting from hidden states) are for one session's pass only.
/// </para>
/// </summary>
internal sealed class ForwardPass
{
    private readonly TransformerModel _model;
    private readonly InferenceSession? _session;
    private PassSegment[] _segments = new PassSegment[1];
    private int _segmentCount;
    private PassBuffers _b;
    private int[] _tokens = [];
    private int[] _slots = [];
    private int[] _positions = [];
    private int _qkvLayer = -1;
    private int _nextLayer;
    private bool _freshKvDropped;

    internal ForwardPass(InferenceSession session, PassBuffers buffers)
    {
        _model = session.Model;
        _session = session;
        _b = buffers;
    }

    /// <summary>A pass over several sessions' rows (see <see cref="SequenceBatch"/>).</summary>
    internal ForwardPass(TransformerModel model, PassBuffers buffers)
    {
        _model = model;
        _b = buffers;
    }

    /// <summary>Starts a new pass over these rows of the owning session (one instance is reused, so nothing is allocated per token).</summary>
    internal void Reset(PassBuffers buffers, ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        var session = _session ?? throw new InvalidOperationException("A batch pass starts with ResetBatch.");
        CheckRows(tokens, slots, positions);
        session.Cache.SetPositions(slots, positions);
        _segments[0] = new PassSegment(session.Cache, 0, tokens.Length);
        _segmentCount = 1;
        Start(buffers, tokens, slots, positions);
    }

    /// <summary>
    /// Starts a pass over the rows of several caches: segment i owns rows [Start, Start + Count) of the spans, which
    /// follow each other in segment order. Each cache appears once.
    /// </summary>
    internal void ResetBatch(PassBuffers buffers, ReadOnlySpan<PassSegment> segments, ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        CheckRows(tokens, slots, positions);
        var next = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            if (segments[i].Start != next || segments[i].Count <= 0)
            {
                throw new ArgumentException("Segments must cover the rows in order, each at least one row.", nameof(segments));
            }

            next += segments[i].Count;
        }

        if (next != tokens.Length)
        {
            throw new ArgumentException($"Segments cover {next} rows; the pass has {tokens.Length}.", nameof(segments));
        }

        // Checked for every cache before any is changed, so a bad batch leaves every sequence as it was: a batch appends
        // to each sequence (slots from its length on, positions after its last).
        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            CheckAppend(s.Cache, slots.Slice(s.Start, s.Count), positions.Slice(s.Start, s.Count));
            for (var j = 0; j < i; j++)
            {
                if (ReferenceEquals(segments[j].Cache, s.Cache))
                {
                    throw new ArgumentException("A sequence appears twice in one batch.", nameof(segments));
                }
            }
        }

        if (_segments.Length < segments.Length)
        {
            _segments = new PassSegment[Math.Max(segments.Length, _segments.Length * 2)];
        }

        for (var i = 0; i < segments.Length; i++)
        {
            var s = segments[i];
            s.Cache.SetPositions(slots.Slice(s.Start, s.Count), positions.Slice(s.Start, s.Count));
            _segments[i] = s;
        }

        _segmentCount = segments.Length;
        Start(buffers, tokens, slots, positions);
    }

    private static void CheckAppend(KvCache cache, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        if (cache.Length + slots.Length > cache.Capacity)
        {
            throw new ArgumentException($"{cache.Length + slots.Length} tokens exceed the sequence's capacity of {cache.Capacity}.");
        }

        var last = cache.Length == 0 ? -1 : cache.Positions[^1];
        for (var i = 0; i < slots.Length; i++)
        {
            if (slots[i] != cache.Length + i || positions[i] < Math.Max(last, 0) || (i > 0 && positions[i] < positions[i - 1]))
            {
                throw new ArgumentException($"A batch appends to each sequence: row {i} has slot {slots[i]} and position {positions[i]}, the sequence has {cache.Length} slots ending at position {last}.");
            }
        }
    }

    private void CheckRows(ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        if (tokens.Length != slots.Length || tokens.Length != positions.Length)
        {
            throw new ArgumentException("Tokens, slots and positions must have the same length.");
        }

        // Checked on the host before anything is queued: on a GPU an id out of range would surface as a kernel
        // error at a later synchronization, possibly in another session's operation.
        var vocabulary = _model.Config.VocabSize;
        for (var i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocabulary)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token id {tokens[i]} at row {i} is outside the vocabulary of {vocabulary}.");
            }
        }
    }

    private void Start(PassBuffers buffers, ReadOnlySpan<int> tokens, ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        _b = buffers;
        _tokens = buffers.HostTokens;
        _slots = buffers.HostSlots;
        _positions = buffers.HostPositions;
        tokens.CopyTo(_tokens);
        slots.CopyTo(_slots);
        positions.CopyTo(_positions);
        RowCount = tokens.Length;
        _qkvLayer = -1;
        _nextLayer = 0;
        _freshKvDropped = false;
        var backend = Backend;
        backend.Upload(tokens, _b.Tokens, 0);
        backend.Upload(slots, _b.Slots, 0);
        backend.Upload(positions, _b.Positions, 0);
        backend.Embed(_model.Embedding, _b.Tokens, RowCount, _b.Hidden);
    }

    /// <summary>Rows still being computed.</summary>
    public int RowCount { get; private set; }

    /// <summary>Token ids of the rows.</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, RowCount);

    /// <summary>Cache slots of the rows.</summary>
    public ReadOnlySpan<int> Slots => _slots.AsSpan(0, RowCount);

    /// <summary>Positions of the rows.</summary>
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, RowCount);

    /// <summary>The next layer this pass expects to finish.</summary>
    public int NextLayer => _nextLayer;

    private TransformerModel Model => _model;

    private ComputeBackend Backend => _model.Backend;

    /// <summary>The one session of a single-session pass; the row-inspecting steps need it.</summary>
    private InferenceSession Session => _segmentCount == 1 && _session is not null
        ? _session
        : throw new InvalidOperationException("This step is for a single session's pass, not a batch.");

    /// <summary>The plain layer: q/k/v, write all rows' K/V, attention and MLP.</summary>
    public void RunLayer(int layer)
    {
        ComputeQkv(layer);
        CommitKv(layer);
        CompleteLayer(layer);
    }

    /// <summary>Runs every remaining layer plainly.</summary>
    public void RunRemainingLayers()
    {
        while (_nextLayer < Model.Config.LayerCount)
        {
            RunLayer(_nextLayer);
        }
    }

    /// <summary>
    /// Copies the rows' hidden states entering <see cref="NextLayer"/>, [rows, hidden], to host memory: the E-cache a
    /// compatible model restarts from when it shares this pass's KV.
    /// </summary>
    public void DownloadHidden(Span<float> destination)
    {
        if (_qkvLayer >= 0)
        {
            throw new InvalidOperationException($"The hidden state entering layer {_qkvLayer} is read before its q/k/v are computed.");
        }

        var count = RowCount * Model.Config.HiddenSize;
        if (destination.Length != count)
        {
            throw new ArgumentException($"The hidden states of {RowCount} rows need {count} floats; got {destination.Length}.", nameof(destination));
        }

        Backend.Download(_b.Hidden, 0, RowCount, destination);
    }

    /// <summary>
    /// Continues the pass at <paramref name="layer"/> from the given hidden states entering it ([rows, hidden]), in
    /// place of the layers before: cross-model sharing starts a receiver's recompute from the sender's E-cache.
    /// </summary>
    public void StartAt(int layer, ReadOnlySpan<float> hidden)
    {
        _ = Session;
        if (_qkvLayer >= 0)
        {
            throw new InvalidOperationException($"Layer {_qkvLayer} has its q/k/v computed; start a pass at a layer before computing any.");
        }

        if ((uint)layer >= (uint)Model.Config.LayerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(layer), $"Layer {layer} is not one of the model's {Model.Config.LayerCount} layers.");
        }

        var count = RowCount * Model.Config.HiddenSize;
        if (hidden.Length != count)
        {
            throw new ArgumentException($"The hidden states of {RowCount} rows need {count} floats; got {hidden.Length}.", nameof(hidden));
        }

        Backend.Upload(hidden, _b.Hidden, 0);
        _nextLayer = layer;
    }

    /// <summary>
    /// Computes the rows' queries, keys and values for <paramref name="layer"/> (input norm, projections, q/k norm,
    /// RoPE). The fresh K before and after RoPE, and V, can then be read with <see cref="DownloadFreshKv"/>.
    /// </summary>
    public void ComputeQkv(int layer)
    {
        EnsureLayer(layer);
        var c = Model.Config;
        var w = Model.Layers[layer];
        var n = RowCount;
        Backend.RmsNorm(_b.Hidden, n, w.InputNorm, c.RmsNormEps, _b.Normed);
        Backend.MatMul(_b.Normed, n, w.Query, w.QueryBias, _b.Query, accumulate: false);
        Backend.MatMul(_b.Normed, n, w.Key, w.KeyBias, _b.KeyPre, accumulate: false);
        Backend.MatMul(_b.Normed, n, w.Value, w.ValueBias, _b.Value, accumulate: false);
        if (w.QueryNorm is not null && w.KeyNorm is not null)
        {
            Backend.RmsNormHeads(_b.Query, n, c.HeadDim, w.QueryNorm, c.RmsNormEps);
            Backend.RmsNormHeads(_b.KeyPre, n, c.HeadDim, w.KeyNorm, c.RmsNormEps);
        }

        Backend.ApplyRope(_b.Query, n, c.HeadDim, _b.Positions, Model.InverseFrequencies, _b.Query);
        Backend.ApplyRope(_b.KeyPre, n, c.HeadDim, _b.Positions, Model.InverseFrequencies, _b.KeyRotated);
        _qkvLayer = layer;
        _freshKvDropped = false;
    }

    /// <summary>
    /// Copies the fresh K (before RoPE when <paramref name="preRope"/>, else after) and V of the current rows, each
    /// [rows, kv_heads·head_dim], to host memory. Either span may be empty to skip it.
    /// </summary>
    public void DownloadFreshKv(bool preRope, Span<float> keys, Span<float> values)
    {
        RequireQkv();
        RequireFreshKv();
        if (!keys.IsEmpty)
        {
            Backend.Download(preRope ? _b.KeyPre : _b.KeyRotated, 0, RowCount, keys);
        }

        if (!values.IsEmpty)
        {
            Backend.Download(_b.Value, 0, RowCount, values);
        }
    }

    /// <summary>
    /// Per current row, the squared L2 distance between the fresh K (after RoPE) and/or V and what the cache holds at
    /// the row's slot for this layer (summed over heads; K and V added when both are asked for). Call before
    /// <see cref="CommitKv(int)"/>.
    /// </summary>
    public void CacheDeviation(bool keys, bool values, Span<float> deviation)
    {
        RequireQkv();
        RequireFreshKv();
        var n = RowCount;
        if (deviation.Length < n)
        {
            throw new ArgumentException($"Deviation needs {n} entries.", nameof(deviation));
        }

        deviation[..n].Clear();
        var session = Session;
        var tmp = session.DeviationScratch(n);
        if (keys)
        {
            Backend.CacheDeviation(_b.KeyRotated, n, _b.Slots, session.Cache.Keys(_qkvLayer), session.Cache.KvHeads, session.Cache.Capacity, _b.Deviation);
            Backend.Download(_b.Deviation, 0, n, tmp);
            for (var i = 0; i < n; i++)
            {
                deviation[i] += tmp[i];
            }
        }

        if (values)
        {
            Backend.CacheDeviation(_b.Value, n, _b.Slots, session.Cache.Values(_qkvLayer), session.Cache.KvHeads, session.Cache.Capacity, _b.Deviation);
            Backend.Download(_b.Deviation, 0, n, tmp);
            for (var i = 0; i < n; i++)
            {
                deviation[i] += tmp[i];
            }
        }
    }

    /// <summary>Writes the fresh K (after RoPE) and V of all current rows into the cache at their slots.</summary>
    public void CommitKv(int layer)
    {
        RequireQkv();
        RequireFreshKv();
        if (layer != _qkvLayer)
        {
            throw new InvalidOperationException($"The fresh K/V are of layer {_qkvLayer}, not {layer}.");
        }

        if (_segmentCount == 1)
        {
            var cache = _segments[0].Cache;
            Backend.ScatterToCache(_b.KeyRotated, RowCount, _b.Slots, cache.Keys(layer), cache.KvHeads, cache.Capacity);
            Backend.ScatterToCache(_b.Value, RowCount, _b.Slots, cache.Values(layer), cache.KvHeads, cache.Capacity);
            return;
        }

        // Each sequence's rows go to its own cache; the backend's scatter reads from row 0, so they move to scratch first.
        for (var i = 0; i < _segmentCount; i++)
        {
            var (cache, start, n) = _segments[i];
            Backend.CopyRows(_b.KeyRotated, start, _b.KvScratchA, 0, n);
            Backend.CopyRows(_b.Value, start, _b.KvScratchB, 0, n);
            Backend.CopyRows(_b.Slots, start, _b.IndexScratch, 0, n);
            Backend.ScatterToCache(_b.KvScratchA, n, _b.IndexScratch, cache.Keys(layer), cache.KvHeads, cache.Capacity);
            Backend.ScatterToCache(_b.KvScratchB, n, _b.IndexScratch, cache.Values(layer), cache.KvHeads, cache.Capacity);
        }
    }

    /// <summary>
    /// Writes the fresh K (after RoPE) and V of some current rows (indices into the current rows) into the cache; the
    /// other rows' cache entries keep what they hold (e.g. a stored chunk's K/V).
    /// </summary>
    public void CommitKv(int layer, ReadOnlySpan<int> rows)
    {
        RequireQkv();
        RequireFreshKv();
        if (layer != _qkvLayer)
        {
            throw new InvalidOperationException($"The fresh K/V are of layer {_qkvLayer}, not {layer}.");
        }

        if (rows.IsEmpty)
        {
            return;
        }

        CheckRowIndices(rows);
        var n = rows.Length;
        var cache = Session.Cache;
        Backend.Upload(rows, _b.Gather, 0);
        Backend.GatherRows(_b.KeyRotated, _b.Gather, n, _b.KvScratchA);
        Backend.GatherRows(_b.Value, _b.Gather, n, _b.KvScratchB);
        Backend.GatherRows(_b.Slots, _b.Gather, n, _b.IndexScratch);
        Backend.ScatterToCache(_b.KvScratchA, n, _b.IndexScratch, cache.Keys(layer), cache.KvHeads, cache.Capacity);
        Backend.ScatterToCache(_b.KvScratchB, n, _b.IndexScratch, cache.Values(layer), cache.KvHeads, cache.Capacity);
    }

    /// <summary>
    /// The attention that the given current rows (e.g. the query) pay to each cache slot at the layer whose q/k/v were
    /// computed last, summed over those rows and all heads, into <paramref name="perSlot"/> (cache-length entries).
    /// It reads the cache as it is now, so commit the fresh K/V first when they should be what is attended to.
    /// </summary>
    public void QueryAttention(ReadOnlySpan<int> rows, Span<float> perSlot)
    {
        RequireQkv();
        CheckRowIndices(rows);
        var session = Session;
        var cache = session.Cache;
        if (perSlot.Length < cache.Length)
        {
            throw new ArgumentException($"perSlot needs {cache.Length} entries.", nameof(perSlot));
        }

        var c = Model.Config;
        var n = rows.Length;
        Backend.Upload(rows, _b.Gather, 0);
        Backend.GatherRows(_b.Query, _b.Gather, n, _b.QueryScratch);
        Backend.GatherRows(_b.Positions, _b.Gather, n, _b.IndexScratch);
        var weights = session.SlotScratch();
        Backend.Attention(new AttentionArguments(
            _b.QueryScratch, n, _b.IndexScratch, cache.Keys(_qkvLayer), cache.Values(_qkvLayer), cache.PositionsOnDevice, cache.Length, cache.Capacity,
            c.HeadCount, c.KvHeadCount, c.HeadDim, 1f / MathF.Sqrt(c.HeadDim), _b.Attention, weights));
        Backend.Download(weights, 0, cache.Length, perSlot);
    }

    /// <summary>
    /// Finishes <paramref name="layer"/> for the current rows: attention over the cache's valid slots (causal by
    /// position), output projection, residual, MLP.
    /// </summary>
    /// <param name="layer">The layer whose q/k/v were computed last.</param>
    /// <param name="keyAttention">When given (F32 tensor of at least cache-capacity rows), receives the attention the
    /// rows paid to each slot, summed over rows and heads.</param>
    public void CompleteLayer(int layer, DeviceTensor? keyAttention = null)
    {
        RequireQkv();
        if (layer != _qkvLayer)
        {
            throw new InvalidOperationException($"The fresh q/k/v are of layer {_qkvLayer}, not {layer}.");
        }

        var c = Model.Config;
        var w = Model.Layers[layer];
        var n = RowCount;
        var scale = 1f / MathF.Sqrt(c.HeadDim);
        if (_segmentCount == 1)
        {
            var cache = _segments[0].Cache;
            Backend.Attention(new AttentionArguments(
                _b.Query, n, _b.Positions, cache.Keys(layer), cache.Values(layer), cache.PositionsOnDevice, cache.Length, cache.Capacity,
                c.HeadCount, c.KvHeadCount, c.HeadDim, scale, _b.Attention, keyAttention));
        }
        else
        {
            if (keyAttention is not null)
            {
                throw new InvalidOperationException("Attention to keys is for a single session's pass, not a batch.");
            }

            // Attention reads its queries from row 0: each sequence's rows move to scratch and its output back.
            for (var i = 0; i < _segmentCount; i++)
            {
                var (cache, start, rows) = _segments[i];
                Backend.CopyRows(_b.Query, start, _b.QueryScratch, 0, rows);
                Backend.CopyRows(_b.Positions, start, _b.IndexScratch, 0, rows);
                Backend.Attention(new AttentionArguments(
                    _b.QueryScratch, rows, _b.IndexScratch, cache.Keys(layer), cache.Values(layer), cache.PositionsOnDevice, cache.Length, cache.Capacity,
                    c.HeadCount, c.KvHeadCount, c.HeadDim, scale, _b.AttentionScratch, null));
                Backend.CopyRows(_b.AttentionScratch, 0, _b.Attention, start, rows);
            }
        }

        Backend.MatMul(_b.Attention, n, w.Output, w.OutputBias, _b.Hidden, accumulate: true);
        Backend.RmsNorm(_b.Hidden, n, w.PostAttentionNorm, c.RmsNormEps, _b.Normed);
        Backend.MatMul(_b.Normed, n, w.Gate, w.GateBias, _b.Gate, accumulate: false);
        Backend.MatMul(_b.Normed, n, w.Up, w.UpBias, _b.Up, accumulate: false);
        Backend.SiluMultiply(_b.Gate, _b.Up, n, _b.Gate);
        Backend.MatMul(_b.Gate, n, w.Down, w.DownBias, _b.Hidden, accumulate: true);
        _qkvLayer = -1;
        _nextLayer = layer + 1;
    }

    /// <summary>
    /// Keeps only the given rows (indices into the current rows, ascending) for the steps that follow; their hidden
    /// states, tokens, slots and positions (and queries, between <see cref="ComputeQkv"/> and
    /// <see cref="CompleteLayer"/>) move to the front. Fresh K/V not yet committed are dropped.
    /// </summary>
    public void KeepRows(ReadOnlySpan<int> rows)
    {
        _ = Session;
        CheckRowIndices(rows);
        for (var i = 1; i < rows.Length; i++)
        {
            if (rows[i] <= rows[i - 1])
            {
                throw new ArgumentException("Rows to keep must be ascending.", nameof(rows));
            }
        }

        if (rows.IsEmpty)
        {
            throw new ArgumentException("At least one row must be kept.", nameof(rows));
        }

        for (var i = 0; i < rows.Length; i++)
        {
            _tokens[i] = _tokens[rows[i]];
            _slots[i] = _slots[rows[i]];
            _positions[i] = _positions[rows[i]];
        }

        var n = rows.Length;
        Backend.Upload(rows, _b.Gather, 0);
        Backend.GatherRows(_b.Hidden, _b.Gather, n, _b.Normed);
        Backend.CopyRows(_b.Normed, 0, _b.Hidden, 0, n);
        if (_qkvLayer >= 0)
        {
            Backend.GatherRows(_b.Query, _b.Gather, n, _b.QueryScratch);
            Backend.CopyRows(_b.QueryScratch, 0, _b.Query, 0, n);
            _freshKvDropped = true;
        }

        Backend.Upload(_tokens.AsSpan(0, n), _b.Tokens, 0);
        Backend.Upload(_slots.AsSpan(0, n), _b.Slots, 0);
        Backend.Upload(_positions.AsSpan(0, n), _b.Positions, 0);
        RowCount = n;
    }

    /// <summary>
    /// Logits of the current row <paramref name="row"/> after all layers (final norm, lm_head) into
    /// <paramref name="logits"/> (vocab_size floats).
    /// </summary>
    public void ComputeLogits(int row, Span<float> logits)
    {
        if (_nextLayer != Model.Config.LayerCount)
        {
            throw new InvalidOperationException($"Logits need all {Model.Config.LayerCount} layers; {_nextLayer} are done.");
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)RowCount, nameof(row));
        Backend.CopyRows(_b.Hidden, row, _b.Normed, 0, 1);
        Backend.RmsNorm(_b.Normed, 1, Model.FinalNorm, Model.Config.RmsNormEps, _b.Normed);
        Backend.MatMul(_b.Normed, 1, Model.LmHead, null, _b.Logits, accumulate: false);
        Backend.Download(_b.Logits, 0, 1, logits);
    }

    /// <summary>
    /// Logits of several current rows after all layers into <paramref name="logits"/> ([count, vocab] F32, at least
    /// rows.Length rows) and, row after row, into <paramref name="host"/> (rows.Length · vocab_size floats): one
    /// lm_head GEMM for a batch's sequences.
    /// </summary>
    public void ComputeLogits(ReadOnlySpan<int> rows, DeviceTensor logits, Span<float> host)
    {
        if (_nextLayer != Model.Config.LayerCount)
        {
            throw new InvalidOperationException($"Logits need all {Model.Config.LayerCount} layers; {_nextLayer} are done.");
        }

        CheckRowIndices(rows);
        var n = rows.Length;
        if (n == 0)
        {
            return;
        }

        var vocabulary = Model.Config.VocabSize;
        if (logits.Rows < n || host.Length < (long)n * vocabulary)
        {
            throw new ArgumentException($"Logits of {n} rows need {n} device rows and {(long)n * vocabulary} host floats.");
        }

        Backend.Upload(rows, _b.Gather, 0);
        Backend.GatherRows(_b.Hidden, _b.Gather, n, _b.Normed);
        Backend.RmsNorm(_b.Normed, n, Model.FinalNorm, Model.Config.RmsNormEps, _b.Normed);
        Backend.MatMul(_b.Normed, n, Model.LmHead, null, logits, accumulate: false);
        Backend.Download(logits, 0, n, host[..(n * vocabulary)]);
    }

    private void EnsureLayer(int layer)
    {
        if (layer != _nextLayer)
        {
            throw new InvalidOperationException($"Layers run in order: expected layer {_nextLayer}, got {layer}.");
        }
    }

    private void CheckRowIndices(ReadOnlySpan<int> rows)
    {
        foreach (var r in rows)
        {
            if ((uint)r >= (uint)RowCount)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), $"Row {r} is not one of the {RowCount} current rows.");
            }
        }
    }

    private void RequireFreshKv()
    {
        if (_freshKvDropped)
        {
            throw new InvalidOperationException("KeepRows dropped the fresh K/V of this layer; commit them before keeping rows.");
        }
    }

    private void RequireQkv()
    {
        if (_qkvLayer < 0)
        {
            throw new InvalidOperationException("Call ComputeQkv for the layer first.");
        }
    }
}

/// <summary>The rows [Start, Start + Count) of a batch pass that belong to one sequence's cache.</summary>
internal readonly record struct PassSegment(KvCache Cache, int Start, int Count);

/// <summary>Scratch tensors of a pass, sized for a maximum row count and reused across passes.</summary>
internal sealed class PassBuffers : IDisposable
{
    public PassBuffers(ComputeBackend backend, ModelConfig c, int rows)
    {
        Rows = rows;
        Bytes = 4L * rows * ((2L * c.HiddenSize) + (4L * c.QueryWidth) + (5L * c.KvWidth) + (2L * c.IntermediateSize) + 7) + (4L * c.VocabSize);
        Hidden = backend.Allocate(TensorDType.F32, rows, c.HiddenSize);
        Normed = backend.Allocate(TensorDType.F32, rows, c.HiddenSize);
        Query = backend.Allocate(TensorDType.F32, rows, c.QueryWidth);
        KeyPre = backend.Allocate(TensorDType.F32, rows, c.KvWidth);
        KeyRotated = backend.Allocate(TensorDType.F32, rows, c.KvWidth);
        Value = backend.Allocate(TensorDType.F32, rows, c.KvWidth);
        Attention = backend.Allocate(TensorDType.F32, rows, c.QueryWidth);
        Gate = backend.Allocate(TensorDType.F32, rows, c.IntermediateSize);
        Up = backend.Allocate(TensorDType.F32, rows, c.IntermediateSize);
        Tokens = backend.Allocate(TensorDType.I32, rows, 1);
        Slots = backend.Allocate(TensorDType.I32, rows, 1);
        Positions = backend.Allocate(TensorDType.I32, rows, 1);
        Gather = backend.Allocate(TensorDType.I32, rows, 1);
        Deviation = backend.Allocate(TensorDType.F32, rows, 1);
        Logits = backend.Allocate(TensorDType.F32, 1, c.VocabSize);
        QueryScratch = backend.Allocate(TensorDType.F32, rows, c.QueryWidth);
        AttentionScratch = backend.Allocate(TensorDType.F32, rows, c.QueryWidth);
        KvScratchA = backend.Allocate(TensorDType.F32, rows, c.KvWidth);
        KvScratchB = backend.Allocate(TensorDType.F32, rows, c.KvWidth);
        IndexScratch = backend.Allocate(TensorDType.I32, rows, 1);
        HostTokens = new int[rows];
        HostSlots = new int[rows];
        HostPositions = new int[rows];
    }

    public int[] HostTokens { get; }

    public int[] HostSlots { get; }

    public int[] HostPositions { get; }

    public int Rows { get; }

    /// <summary>Device bytes held (what the session pool counts).</summary>
    public long Bytes { get; }

    public DeviceTensor Hidden { get; }

    public DeviceTensor Normed { get; }

    public DeviceTensor Query { get; }

    public DeviceTensor KeyPre { get; }

    public DeviceTensor KeyRotated { get; }

    public DeviceTensor Value { get; }

    public DeviceTensor Attention { get; }

    public DeviceTensor Gate { get; }

    public DeviceTensor Up { get; }

    public DeviceTensor Tokens { get; }

    public DeviceTensor Slots { get; }

    public DeviceTensor Positions { get; }

    public DeviceTensor Gather { get; }

    public DeviceTensor Deviation { get; }

    public DeviceTensor Logits { get; }

    public DeviceTensor QueryScratch { get; }

    public DeviceTensor AttentionScratch { get; }

    public DeviceTensor KvScratchA { get; }

    public DeviceTensor KvScratchB { get; }

    public DeviceTensor IndexScratch { get; }

    public void Dispose()
    {
        foreach (var t in new[] { Hidden, Normed, Query, KeyPre, KeyRotated, Value, Attention, Gate, Up, Tokens, Slots, Positions, Gather, Deviation, Logits, QueryScratch, AttentionScratch, KvScratchA, KvScratchB, IndexScratch })
        {
            t.Dispose();
        }
    }
}
