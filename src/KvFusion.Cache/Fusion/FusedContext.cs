using System.Runtime.CompilerServices;
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
    private readonly Lock _lock = new();
    private bool _stepping;
    private bool _disposed;
    private int _stepsEntered;

    internal FusedContext(InferenceSession session, float[] logits, FusionReport report, int[] promptTokens, ComputeGate gate)
    {
        Session = session;
        Logits = logits;
        Report = report;
        PromptTokens = promptTokens;
        _gate = gate;
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
    /// Streams a continuation of the fused prompt. Each step (one decode and the sampling of the next token) waits for
    /// the engine's compute queue and leaves it before the token is yielded, so concurrent requests and generations
    /// take turns step by step and no generation holds the queue between tokens.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The engine or this context was disposed before a step could run.</exception>
    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(
        SamplingOptions options, GenerationStats? stats = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
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

        Session.Dispose();
    }

    private void BeginStep()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _stepping = true;
        }
    }

    private void EndStep()
    {
        bool release;
        lock (_lock)
        {
            _stepping = false;
            release = _disposed;
        }

        if (release)
        {
            Session.Dispose();
        }
    }
}
