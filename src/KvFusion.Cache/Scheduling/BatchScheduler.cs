using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Generation;
using KvFusion.Engine.Transformer;
using Microsoft.Extensions.Logging;

namespace KvFusion.Cache.Scheduling;

/// <summary>
/// Continuous batching of generations (Orca's iteration-level scheduling): one loop owns every running generation of
/// a model, and each iteration samples each one's next token from its logits, then decodes all of them through one
/// <see cref="SequenceBatch"/> step inside the engine's compute gate, followed by one chunk of a waiting prompt's
/// prefill (Sarathi-Serve's stall-free chunked prefill: running streams wait one chunk per step, not a whole
/// prompt). Fusions' other work (loading, blend's selective recompute) and precomputes take the gate between steps,
/// so a sequence joins the batch as soon as its prompt is fused and leaves it the step after it ends, is cancelled, or
/// its context is disposed. When more generations run than a step holds, tenants take turns.
/// </summary>
/// <remarks>
/// Decode rows and prompt chunks run as separate passes of the step: each row then goes through the kernels it goes
/// through alone (decode batches of up to the CPU's GEMV row limit, prompt chunks at the prefill chunk's boundaries),
/// so a sequence's tokens and logits are the ones it gets without batching.
/// </remarks>
internal sealed class BatchScheduler : IAsyncDisposable
{
    private readonly TransformerModel _model;
    private readonly ComputeGate _gate;
    private readonly BatchingOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<Sequence> _arrivals = new();
    private readonly ConcurrentQueue<PrefillJob> _prefillArrivals = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _startLock = new();
    private Task? _loop;
    private int _running;
    private long _steps;
    private long _decoded;
    private long _chunks;
    private int _rotation;
    private volatile bool _closed;

    public BatchScheduler(TransformerModel model, ComputeGate gate, BatchingOptions options, ILogger logger)
    {
        options.Validate();
        _model = model;
        _gate = gate;
        _options = options;
        _logger = logger;
    }

    /// <summary>Whether the scheduler (or the gate under it) was closed: it takes no new work.</summary>
    public bool IsClosed => _closed || _gate.IsClosed;

    /// <summary>Generations running now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>Batched steps run so far.</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Prompt chunks prefilled so far.</summary>
    public long PrefillChunks => Interlocked.Read(ref _chunks);

    /// <summary>Decode tokens computed so far, over all steps.</summary>
    public long DecodedTokens => Interlocked.Read(ref _decoded);

    /// <summary>
    /// Streams a continuation of <paramref name="context"/>'s prompt, decoded in the shared batch. Leaving the stream
    /// early (or cancelling) takes the sequence out of the batch at the next step.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The engine or the context was disposed.</exception>
    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(
        FusedContext context, SamplingOptions options, GenerationStats? stats, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sequence = new Sequence(context, new TokenGeneration(_model, options, stats), cancellationToken);
        Register(sequence);
        try
        {
            // Tokens decoded ahead wait in the channel; a cancelled reader gets none of them.
            var reader = sequence.Output.Reader;
            while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (reader.TryRead(out var token))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    yield return token;
                }
            }
        }
        finally
        {
            sequence.Abandoned = true;
        }
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> to <paramref name="session"/> in chunks of
    /// <see cref="BatchingOptions.PrefillChunkTokens"/>, one per step, and writes the last token's logits to
    /// <paramref name="logits"/>. Call it without holding the compute gate.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (between chunks).</exception>
    public Task PrefillAsync(InferenceSession session, ReadOnlyMemory<int> tokens, float[] logits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("Nothing to prefill.", nameof(tokens));
        }

        if (session.Length + tokens.Length > session.Cache.Capacity)
        {
            throw new ArgumentException($"{session.Length + tokens.Length} tokens exceed the session's capacity of {session.Cache.Capacity}.", nameof(tokens));
        }

        cancellationToken.ThrowIfCancellationRequested();
        var job = new PrefillJob(session, tokens, logits, cancellationToken);
        lock (_startLock)
        {
            if (_closed || _gate.IsClosed)
            {
                throw Closed();
            }

            _prefillArrivals.Enqueue(job);
            _loop ??= Task.Run(LoopAsync, CancellationToken.None);
        }

        _arrived.Release();
        return job.Done.Task;
    }

    /// <summary>Ends every running generation with <see cref="ObjectDisposedException"/> and stops the loop.</summary>
    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_startLock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            loop = _loop;
        }

        await _closing.CancelAsync().ConfigureAwait(false);
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }

        while (_arrivals.TryDequeue(out var s))
        {
            Finish(s, Closed());
        }

        while (_prefillArrivals.TryDequeue(out var job))
        {
            job.Done.TrySetException(Closed());
        }

        _arrived.Dispose();
        _closing.Dispose();
    }

    private void Register(Sequence sequence)
    {
        lock (_startLock)
        {
            if (_closed || _gate.IsClosed)
            {
                throw Closed();
            }

            ObjectDisposedException.ThrowIf(sequence.Context.IsDisposed, sequence.Context);
            Interlocked.Increment(ref _running);
            _arrivals.Enqueue(sequence);
            _loop ??= Task.Run(LoopAsync);
        }

        _arrived.Release();
    }

    private async Task LoopAsync()
    {
        var active = new List<Sequence>();
        var chosen = new List<Sequence>();
        var prefills = new List<PrefillJob>();
        var stepPrefills = new List<PrefillJob>();
        var emitted = new List<GeneratedToken>(2);
        SequenceBatch? batch = null;
        SequenceBatch? chunks = null;
        try
        {
            while (!_closing.IsCancellationRequested)
            {
                while (_arrivals.TryDequeue(out var arrival))
                {
                    active.Add(arrival);
                }

                while (_prefillArrivals.TryDequeue(out var job))
                {
                    prefills.Add(job);
                }

                // Cancelled prompts leave between steps, never while a step computes on their session.
                prefills.RemoveAll(static p => p.Cancellation.IsCancellationRequested && p.Done.TrySetCanceled(p.Cancellation));

                if (active.Count == 0 && prefills.Count == 0)
                {
                    await _arrived.WaitAsync(_closing.Token).ConfigureAwait(false);
                    continue;
                }

                Sample(active, emitted);
                Choose(active, chosen);
                ChoosePrefills(prefills, stepPrefills);
                if (chosen.Count == 0 && stepPrefills.Count == 0)
                {
                    continue;
                }

                batch ??= new SequenceBatch(_model, _options.MaxSequencesPerStep, _options.MaxSequencesPerStep);
                chunks ??= stepPrefills.Count == 0 ? null : new SequenceBatch(_model, _options.PrefillChunkTokens, 1);
                await StepAsync(batch, chosen, chunks, stepPrefills).ConfigureAwait(false);
                prefills.RemoveAll(static p => p.Done.Task.IsCompleted);

                active.RemoveAll(s => s.Done);
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _logger.LogError(e, "The batch loop of {Model} failed; its generations end with the error", _model.Directory);
            foreach (var s in active)
            {
                Finish(s, e);
            }

            active.Clear();
            prefills.ForEach(job => job.Done.TrySetException(e));
            prefills.Clear();
        }
        finally
        {
            foreach (var s in active)
            {
                Finish(s, Closed());
            }

            prefills.ForEach(job => job.Done.TrySetException(Closed()));
            batch?.Dispose();
            chunks?.Dispose();
        }
    }

    /// <summary>Each sequence with fresh logits samples its next token; the ones that end, or were left, leave.</summary>
    private void Sample(List<Sequence> active, List<GeneratedToken> emitted)
    {
        foreach (var s in active)
        {
            if (s.Abandoned || s.Cancellation.IsCancellationRequested)
            {
                Finish(s, new OperationCanceledException(s.Cancellation));
                continue;
            }

            if (s.Context.IsDisposed)
            {
                Finish(s, new ObjectDisposedException(nameof(FusedContext)));
                continue;
            }

            if (!s.HasLogits)
            {
                continue;
            }

            emitted.Clear();
            bool more;
            try
            {
                var session = s.Context.Session;
                more = s.Generation.Advance(s.Context.Logits, session.Length >= session.Cache.Capacity, emitted);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One sequence's failure (a NaN logit, say) ends that sequence only.
                Finish(s, e);
                continue;
            }

            foreach (var token in emitted)
            {
                s.Output.Writer.TryWrite(token);
            }

            s.HasLogits = false;
            if (!more)
            {
                Finish(s, null);
            }
        }

        active.RemoveAll(s => s.Done);
    }

    /// <summary>
    /// The prompt chunks of the next step, first come first served: the head's next chunk, then the chunks of the
    /// prompts behind it while they fit the step's <see cref="BatchingOptions.PrefillChunkTokens"/> (a burst of short
    /// prompts is prefilled a few per step, not one per decode step). A chunk is never cut to fit: chunks keep
    /// Prefill's boundaries, so each prompt is computed as alone.
    /// </summary>
    private void ChoosePrefills(List<PrefillJob> prefills, List<PrefillJob> chosen)
    {
        chosen.Clear();
        var budget = _options.PrefillChunkTokens;
        foreach (var job in prefills)
        {
            if (job.Cancellation.IsCancellationRequested)
            {
                continue;
            }

            var n = Math.Min(_options.PrefillChunkTokens, job.Tokens.Length - job.Offset);
            if (chosen.Count > 0 && n > budget)
            {
                break;
            }

            chosen.Add(job);
            budget -= n;
            if (budget <= 0)
            {
                break;
            }
        }
    }

    /// <summary>
    /// The sequences of the next step: all of them when they fit; else tenants in turn (one sequence each, round after
    /// round, starting from a tenant that rotates every step), so one tenant's many streams do not crowd out another's.
    /// </summary>
    private void Choose(List<Sequence> active, List<Sequence> chosen)
    {
        chosen.Clear();
        var limit = _options.MaxSequencesPerStep;
        if (active.Count <= limit)
        {
            foreach (var s in active)
            {
                Enter(s, chosen);
            }

            return;
        }

        // Over the limit (rare: it is the step's width): per tenant, its least recently decoded sequences first.
        var tenants = new List<List<Sequence>>();
        foreach (var s in active)
        {
            var group = tenants.Find(g => ReferenceEquals(g[0].Context.Owner, s.Context.Owner));
            if (group is null)
            {
                tenants.Add([s]);
            }
            else
            {
                group.Add(s);
            }
        }

        foreach (var group in tenants)
        {
            group.Sort(static (a, b) => a.LastStep.CompareTo(b.LastStep));
        }

        var first = _rotation++ % tenants.Count;
        for (var round = 0; chosen.Count < limit; round++)
        {
            var any = false;
            for (var t = 0; t < tenants.Count && chosen.Count < limit; t++)
            {
                var group = tenants[(first + t) % tenants.Count];
                if (round < group.Count)
                {
                    any = true;
                    Enter(group[round], chosen);
                }
            }

            if (!any)
            {
                break;
            }
        }
    }

    private void Enter(Sequence s, List<Sequence> chosen)
    {
        if (s.Context.TryBeginStep())
        {
            chosen.Add(s);
        }
        else
        {
            Finish(s, new ObjectDisposedException(nameof(FusedContext)));
        }
    }

    /// <summary>
    /// One step inside the compute gate: every chosen sequence's next token in one batched pass, then the chosen prompt
    /// chunks, each in a pass of its own.
    /// </summary>
    private async Task StepAsync(SequenceBatch batch, List<Sequence> chosen, SequenceBatch? chunks, List<PrefillJob> prefills)
    {
        var decoded = false;
        Exception? decodeError = null;
        try
        {
            await _gate.EnterAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                if (chosen.Count > 0)
                {
                    try
                    {
                        batch.Clear();
                        foreach (var s in chosen)
                        {
                            s.Context.CountStep();
                            if (s.Context.StepHook is { } hook)
                            {
                                await hook().ConfigureAwait(false);
                            }

                            batch.Add(s.Context.Session, [s.Generation.NextInput]);
                        }

                        batch.Run();
                        decoded = true;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        decodeError = e;
                    }
                }

                if (chunks is not null)
                {
                    foreach (var job in prefills)
                    {
                        RunChunk(chunks, job);
                    }
                }
            }
            finally
            {
                _gate.Exit();
            }
        }
        catch (ObjectDisposedException)
        {
            decodeError = Closed();
            prefills.ForEach(p => p.Done.TrySetException(Closed()));
        }

        if (decoded)
        {
            var step = Interlocked.Increment(ref _steps);
            for (var e = 0; e < chosen.Count; e++)
            {
                batch.LogitsOf(e).CopyTo(chosen[e].Context.Logits);
                chosen[e].HasLogits = true;
                chosen[e].LastStep = step;
            }

            Interlocked.Add(ref _decoded, chosen.Count);
        }
        else
        {
            foreach (var s in chosen)
            {
                Finish(s, decodeError ?? Closed());
            }
        }

        foreach (var s in chosen)
        {
            s.Context.EndStep();
        }

        batch.Clear();

        // A prompt whose last chunk ran is answered outside the gate (a failed one already holds its exception).
        foreach (var job in prefills)
        {
            if (job.Offset == job.Tokens.Length)
            {
                job.Done.TrySetResult();
            }
        }
    }

    /// <summary>Computes the next chunk of <paramref name="job"/> (after its last, the logits are written); a failure fails the job.</summary>
    private void RunChunk(SequenceBatch chunks, PrefillJob job)
    {
        try
        {
            var chunk = _options.PrefillChunkTokens;
            var n = Math.Min(chunk, job.Tokens.Length - job.Offset);
            var last = job.Offset + n == job.Tokens.Length;
            chunks.Clear();
            chunks.Add(job.Session, job.Tokens.Span.Slice(job.Offset, n), logits: last);
            chunks.Run();
            Interlocked.Increment(ref _chunks);
            job.Offset += n;
            if (last)
            {
                chunks.LogitsOf(0).CopyTo(job.Logits);
            }

            chunks.Clear();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            chunks.Clear();
            job.Done.TrySetException(e);
        }
    }

    private void Finish(Sequence s, Exception? error)
    {
        if (s.Done)
        {
            return;
        }

        s.Done = true;
        Interlocked.Decrement(ref _running);
        s.Output.Writer.TryComplete(error);
    }

    private static ObjectDisposedException Closed() => new(nameof(FusionEngine), "The fusion engine was disposed.");

    private sealed class PrefillJob(InferenceSession session, ReadOnlyMemory<int> tokens, float[] logits, CancellationToken cancellation)
    {
        public InferenceSession Session { get; } = session;

        public ReadOnlyMemory<int> Tokens { get; } = tokens;

        public float[] Logits { get; } = logits;

        public CancellationToken Cancellation { get; } = cancellation;

        /// <summary>Tokens computed so far.</summary>
        public int Offset { get; set; }

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Sequence(FusedContext context, TokenGeneration generation, CancellationToken cancellation)
    {
        public FusedContext Context { get; } = context;

        public TokenGeneration Generation { get; } = generation;

        public CancellationToken Cancellation { get; } = cancellation;

        public Channel<GeneratedToken> Output { get; } = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        /// <summary>Fresh next-token logits wait in the context to be sampled (true after the fusion and after each step).</summary>
        public bool HasLogits { get; set; } = true;

        /// <summary>The reader left (set from the reader's thread).</summary>
        public volatile bool Abandoned;

        public bool Done { get; set; }

        /// <summary>The step that last decoded this sequence (for taking turns).</summary>
        public long LastStep { get; set; }
    }
}
