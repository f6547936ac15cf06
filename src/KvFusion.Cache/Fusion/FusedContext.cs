using System.Runtime.CompilerServices;
using KvFusion.Cache.Scheduling;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// The result of a fusion: a session whose cache holds the fused prompt, the next-token logits, and the report.
/// Generate from it, then dispose it.
/// </summary>
/// <remarks>
/// Disposing while a step of <see cref="GenerateAsync"/> is decoding (from another thread) does not free the session
/// under it: the session is released when that step ends, before it leaves the compute queue, and later steps throw
/// <see cref="ObjectDisposedException"/>.
/// </remarks>
public sealed class FusedContext : IDisposable
{
    private readonly ComputeGate _gate;
    private readonly BatchScheduler? _scheduler;
    private readonly Lock _lock = new();
    private bool _stepping;
    private bool _disposed;
    private int _stepsEntered;

    private readonly KvMemoryReservation? _memory;

    internal FusedContext(InferenceSession session, float[] logits, FusionReport report, int[] promptTokens, ComputeGate gate, BatchScheduler? scheduler = null, object? owner = null, KvMemoryReservation? memory = null)
    {
        _memory = memory;
        Session = session;
        Logits = logits;
        Report = report;
        PromptTokens = promptTokens;
        _gate = gate;
        _scheduler = scheduler;
        Owner = owner ?? this;
    }

    /// <summary>Who the context is for (the tenant's engine): the batch scheduler takes turns between owners.</summary>
    internal object Owner { get; }

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    internal bool IsDisposed
    {
        get
        {
            lock (_lock)
            {
                return _disposed;
            }
        }
    }

    /// <summary>
    /// The session holding the fused KV. Computing on it directly bypasses the engine's queue; use
    /// <see cref="GenerateAsync"/> to decode in turn with other requests.
    /// </summary>
    public InferenceSession Session { get; }

    /// <summary>Next-token logits after the prompt (updated by decoding).</summary>
    public float[] Logits { get; }

    /// <summary>What the fusion did.</summary>
    public FusionReport Report { get; }

    /// <summary>The fused prompt's token ids (prefix, chunks, query).</summary>
    public IReadOnlyList<int> PromptTokens { get; }

    /// <summary>Steps that got through the compute queue, counted before they decode (for tests).</summary>
    internal int StepsEntered => Volatile.Read(ref _stepsEntered);

    /// <summary>Awaited by each step inside the compute queue, before it decodes (for tests).</summary>
    internal Func<Task>? StepHook { get; set; }

    /// <summary>
    /// Streams a continuation of the fused prompt. With batching (<see cref="FusionEngineOptions.Batching"/>, the
    /// default) the engine's scheduler decodes it together with every other running generation, one batched step per
    /// token; without, each step (one decode and the sampling of the next token) waits for the engine's compute queue
    /// and leaves it before the token is yielded. Either way no generation holds the queue between tokens, and the
    /// tokens are the same.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The engine or this context was disposed before a step could run.</exception>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(SamplingOptions options, GenerationStats? stats = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return _scheduler is { } scheduler
            ? scheduler.GenerateAsync(this, options, stats, cancellationToken)
            : GenerateInTurnAsync(options, stats, cancellationToken);
    }

    private async IAsyncEnumerable<GeneratedToken> GenerateInTurnAsync(
        SamplingOptions options, GenerationStats? stats, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The generator decodes the previous token inside each MoveNextAsync, so gating that call gates one step.
        var tokens = TextGenerator.ContinueAsync(Session, Logits, options, stats, cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using (tokens.ConfigureAwait(false))
        {
            while (true)
            {
                bool more;
                await _gate.EnterAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    BeginStep();
                    try
                    {
                        Interlocked.Increment(ref _stepsEntered);
                        if (StepHook is { } hook)
                        {
                            await hook().ConfigureAwait(false);
                        }

                        more = await tokens.MoveNextAsync().ConfigureAwait(false);
                    }
                    finally
                    {
                        EndStep();
                    }
                }
                finally
                {
                    _gate.Exit();
                }

                if (!more)
                {
                    yield break;
                }

                yield return tokens.Current;
            }
        }
    }

    /// <summary>
    /// Releases the session; if a step is decoding, the step releases it when it ends. Later steps throw
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_stepping)
            {
                return;
            }
        }

        Release();
    }

    private void Release()
    {
        Session.Dispose();
        _memory?.Dispose();
    }

    /// <summary>Counts a step that got through the compute queue (see <see cref="StepsEntered"/>).</summary>
    internal void CountStep() => Interlocked.Increment(ref _stepsEntered);

    /// <summary>Marks a step as running on the session, unless the context was disposed; pair with <see cref="EndStep"/>.</summary>
    internal bool TryBeginStep()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return false;
            }

            _stepping = true;
            return true;
        }
    }

    private void BeginStep()
    {
        ObjectDisposedException.ThrowIf(!TryBeginStep(), this);
    }

    /// <summary>Ends a step; releases the session if the context was disposed during it.</summary>
    internal void EndStep()
    {
        bool release;
        lock (_lock)
        {
            _stepping = false;
            release = _disposed;
        }

        if (release)
        {
            Release();
        }
    }
}
