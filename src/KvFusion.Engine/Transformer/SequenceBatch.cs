using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// One forward step over several sequences at once, the iteration of continuous batching: each sequence adds its
/// rows (one decode token, or a chunk of its prompt), and <see cref="Run"/> computes them all through one pass. The
/// projections, the MLP and the lm_head run as GEMMs over every row, so the weights are read once for the whole
/// batch; K/V writes and attention run per sequence over its own cache. A sequence's result is the one it gets alone
/// (same tokens; logits equal up to the GEMM kernel the row count picks).
/// </summary>
/// <remarks>
/// Not thread-safe: one owner adds, runs and reads, then clears for the next step. Reuses its buffers, so a step
/// allocates nothing.
/// </remarks>
public sealed class SequenceBatch : IDisposable
{
    private readonly TransformerModel _model;
    private readonly PassBuffers _buffers;
    private readonly ForwardPass _pass;
    private readonly DeviceTensor _logits;
    private readonly PassSegment[] _segments;
    private readonly InferenceSession[] _sessions;
    private readonly int[] _logitSlot;
    private readonly int[] _logitRows;
    private readonly int[] _tokens;
    private readonly int[] _slots;
    private readonly float[] _hostLogits;
    private int _count;
    private int _rows;
    private int _logitCount;
    private bool _ran;
    private bool _disposed;

    /// <summary>Creates a batch of at most <paramref name="maxRows"/> rows from at most <paramref name="maxSequences"/> sequences.</summary>
    public SequenceBatch(TransformerModel model, int maxRows, int maxSequences)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSequences, 1);
        _model = model;
        MaxRows = maxRows;
        MaxSequences = Math.Min(maxSequences, maxRows);
        _buffers = model.SessionMemory.RentPass(SessionMemoryPool.PassRows(maxRows, maxRows));
        _pass = new ForwardPass(model, _buffers);
        _logits = model.Backend.Allocate(TensorDType.F32, MaxSequences, model.Config.VocabSize);
        _segments = new PassSegment[MaxSequences];
        _sessions = new InferenceSession[MaxSequences];
        _logitSlot = new int[MaxSequences];
        _logitRows = new int[MaxSequences];
        _tokens = new int[maxRows];
        _slots = new int[maxRows];
        _hostLogits = new float[(long)MaxSequences * model.Config.VocabSize <= Array.MaxLength
            ? MaxSequences * model.Config.VocabSize
            : throw new ArgumentOutOfRangeException(nameof(maxSequences), "Too many sequences for one logits buffer.")];
    }

    /// <summary>Rows a step holds at most (the token budget).</summary>
    public int MaxRows { get; }

    /// <summary>Sequences a step holds at most.</summary>
    public int MaxSequences { get; }

    /// <summary>Sequences added to this step.</summary>
    public int Count => _count;

    /// <summary>Rows added to this step.</summary>
    public int Rows => _rows;

    /// <summary>Rows still free in this step.</summary>
    public int FreeRows => MaxRows - _rows;

    /// <summary>
    /// Adds <paramref name="tokens"/> to the step as the continuation of <paramref name="session"/> (slots and positions
    /// from its length on, as <see cref="InferenceSession.Prefill"/> and <see cref="InferenceSession.Decode"/> place
    /// them). Returns the entry's index, for <see cref="LogitsOf"/>.
    /// </summary>
    /// <param name="session">A session of this batch's model, not yet in this step.</param>
    /// <param name="tokens">At least one token.</param>
    /// <param name="logits">Whether the step computes the next-token logits after the last of these tokens.</param>
    /// <exception cref="ArgumentException">Another model's session, a session already in the step, no tokens, or more than the session holds.</exception>
    /// <exception cref="InvalidOperationException">The step is full (rows or sequences) or was run and not cleared.</exception>
    public int Add(InferenceSession session, ReadOnlySpan<int> tokens, bool logits = true)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(session);
        if (_ran)
        {
            throw new InvalidOperationException("The step was run; clear it before adding the next one.");
        }

        if (!ReferenceEquals(session.Model, _model))
        {
            throw new ArgumentException("The session belongs to another model.", nameof(session));
        }

        if (tokens.IsEmpty)
        {
            throw new ArgumentException("A sequence adds at least one token.", nameof(tokens));
        }

        if (_count == MaxSequences || tokens.Length > FreeRows)
        {
            throw new InvalidOperationException($"The step is full: {tokens.Length} rows asked, {FreeRows} free, {_count} of {MaxSequences} sequences.");
        }

        if (session.Length + tokens.Length > session.Cache.Capacity)
        {
            throw new ArgumentException($"{session.Length + tokens.Length} tokens exceed the session's capacity of {session.Cache.Capacity}.", nameof(tokens));
        }

        for (var i = 0; i < _count; i++)
        {
            if (ReferenceEquals(_sessions[i], session))
            {
                throw new ArgumentException("The session is already in this step.", nameof(session));
            }
        }

        var start = _rows;
        tokens.CopyTo(_tokens.AsSpan(start));
        for (var i = 0; i < tokens.Length; i++)
        {
            _slots[start + i] = session.Length + i;
        }

        var entry = _count++;
        _sessions[entry] = session;
        _segments[entry] = new PassSegment(session.Cache, start, tokens.Length);
        _rows += tokens.Length;
        if (logits)
        {
            _logitSlot[entry] = _logitCount;
            _logitRows[_logitCount++] = _rows - 1;
        }
        else
        {
            _logitSlot[entry] = -1;
        }

        return entry;
    }

    /// <summary>Computes the step: every added row through every layer, then the logits asked for.</summary>
    /// <exception cref="InvalidOperationException">Nothing was added, or the step already ran.</exception>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_count == 0 || _ran)
        {
            throw new InvalidOperationException(_ran ? "The step already ran." : "The step is empty.");
        }

        _ran = true;
        var slots = _slots.AsSpan(0, _rows);
        _pass.ResetBatch(_buffers, _segments.AsSpan(0, _count), _tokens.AsSpan(0, _rows), slots, slots);
        _pass.RunRemainingLayers();
        _pass.ComputeLogits(_logitRows.AsSpan(0, _logitCount), _logits, _hostLogits);
    }

    /// <summary>The next-token logits of entry <paramref name="entry"/> after <see cref="Run"/> (valid until <see cref="Clear"/>).</summary>
    /// <exception cref="InvalidOperationException">The step has not run, or the entry asked for no logits.</exception>
    public ReadOnlySpan<float> LogitsOf(int entry)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)entry, (uint)_count, nameof(entry));
        if (!_ran || _logitSlot[entry] < 0)
        {
            throw new InvalidOperationException(_ran ? "This entry asked for no logits." : "The step has not run.");
        }

        var vocabulary = _model.Config.VocabSize;
        return _hostLogits.AsSpan(_logitSlot[entry] * vocabulary, vocabulary);
    }

    /// <summary>Empties the step for the next one.</summary>
    public void Clear()
    {
        Array.Clear(_sessions, 0, _count);
        Array.Clear(_segments, 0, _count);
        _count = 0;
        _rows = 0;
        _logitCount = 0;
        _ran = false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Clear();
        _logits.Dispose();
        _model.SessionMemory.Return(_buffers);
    }
}
