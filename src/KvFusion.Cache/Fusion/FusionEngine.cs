using System.Diagnostics;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Fusion.Planning;
using KvFusion.Cache.Fusion.Runners;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Scheduling;
using KvFusion.Cache.Storage;
using KvFusion.Engine.Transformer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cache.Fusion;

/// <summary>
/// Builds fused prompts from a prefix, chunks and a query on one model: full recompute, exact prefix reuse, full
/// chunk reuse, CacheBlend, or sharing another model's caches (DroidSpeak). Chunks given as text are precomputed and stored on the way.
/// </summary>
/// <remarks>
/// The backend computes one thing at a time: a request's fusion, a chunk's precompute, or one decode step of a
/// <see cref="FusedContext"/>; everything else waits its turn. Concurrent puts of the same chunk share one
/// precompute. Disposing refuses new work, fails queued work with <see cref="ObjectDisposedException"/>, and waits
/// for the computation in progress.
/// </remarks>
public sealed class FusionEngine : IAsyncDisposable, IDisposable
{
    private readonly ILogger _logger;
    private readonly ComputeGate _gate;
    private readonly BatchScheduler? _scheduler;
    private readonly KvMemoryBudget? _memory;
    private readonly bool _ownsGate;
    private readonly FusionEngineOptions _options;
    private readonly SingleFlight<CacheKey> _precomputes = new();
    private readonly FusionPlanner _planner;
    private readonly ChunkTokenCatalog _catalog;
    private readonly Dictionary<FusionMode, IFusionModeRunner> _runners;
    private int _precomputeCallers;
    private int _precomputesStarted;

    /// <summary>Creates an engine over a loaded model and a store.</summary>
    public FusionEngine(TransformerModel model, IKvStore store, FusionEngineOptions? options = null, ILogger<FusionEngine>? logger = null)
        : this(model, store, options ?? new FusionEngineOptions(), (ILogger?)logger ?? NullLogger.Instance, new ComputeGate(), scheduler: null, memory: null, ownsGate: true)
    {
    }

    private FusionEngine(TransformerModel model, IKvStore store, FusionEngineOptions options, ILogger logger, ComputeGate gate, BatchScheduler? scheduler, KvMemoryBudget? memory, bool ownsGate)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Store = store ?? throw new ArgumentNullException(nameof(store));
        options.QualityCalibration.Validate();

        // The default E-cache layer is where the default blend starts; a model too shallow for it stores none.
        if (ReferenceEquals(options.HiddenStateLayers, FusionEngineOptions.DefaultHiddenStateLayers))
        {
            options = options with { HiddenStateLayers = [.. options.HiddenStateLayers.Where(l => l < model.Config.LayerCount)] };
        }

        _options = options;
        _logger = logger;
        _gate = gate;
        _ownsGate = ownsGate;
        _scheduler = ownsGate && options.Batching is { } batching ? new BatchScheduler(model, gate, batching, logger) : scheduler;
        _memory = ownsGate && options.MaxSessionKvBytes is { } bytes ? new KvMemoryBudget(bytes) : memory;
        _catalog = new ChunkTokenCatalog(options.ChunkTokenCatalogTokens);
        _planner = new FusionPlanner(model, store, options, _catalog);
        var chunks = new ChunkCaches(model, store, options);
        var prefixBlocks = new PrefixBlocks(model, store, options.StorePrefixBlocks);
        IFusionModeRunner[] runners =
        [
            new FullModeRunner(),
            new PrefixModeRunner(prefixBlocks),
            new ReuseModeRunner(chunks, prefixBlocks),
            new BlendModeRunner(chunks, prefixBlocks, options.QualityCalibration),
            new ShareModeRunner(prefixBlocks),
        ];
        _runners = runners.ToDictionary(r => r.Mode);
    }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>Puts that have joined or started a precompute (for tests).</summary>
    internal int PrecomputeCallers => Volatile.Read(ref _precomputeCallers);

    /// <summary>Precomputes started, whether they then found the chunk stored or computed it (for tests).</summary>
    internal int PrecomputesStarted => Volatile.Read(ref _precomputesStarted);

    /// <summary>The store of chunk and prefix-block KV.</summary>
    public IKvStore Store { get; }

    /// <summary>The id of a chunk's tokens under this model and tokenizer.</summary>
    public ChunkId ChunkIdOf(ReadOnlySpan<int> tokens) => _planner.ChunkIdOf(tokens);

    /// <summary>
    /// The store key of a chunk precomputed behind <paramref name="sink"/> (default: the engine's) and, for the prefix
    /// sink, <paramref name="prefix"/>: the key <see cref="PutChunkAsync"/> writes and fusion reads.
    /// </summary>
    public CacheKey ChunkKeyOf(ChunkId id, SinkKind? sink = null, string? prefix = null) => _planner.ChunkKeyOf(id, sink, prefix);

    /// <summary>Tokenizes text with the model's tokenizer.</summary>
    public int[] Tokenize(string text) => _planner.Tokenize(text);

    /// <summary>Precomputes a chunk (if not stored yet) and returns its id; concurrent puts of one chunk compute it once.</summary>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public async Task<ChunkId> PutChunkAsync(ChunkInput chunk, SinkKind? sink = null, string? prefix = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_gate.IsClosed, this);
        ArgumentNullException.ThrowIfNull(chunk);
        var target = _planner.PlanChunk(chunk, sink, prefix);
        _catalog.Add(target.Key, target.Tokens);
        if (!await Store.ContainsAsync(target.Key, cancellationToken).ConfigureAwait(false))
        {
            var precompute = _precomputes.RunAsync(target.Key, ct => PrecomputeAsync(target, ct), cancellationToken);
            Interlocked.Increment(ref _precomputeCallers);
            await precompute.ConfigureAwait(false);
        }

        return target.Id;
    }

    /// <summary>Fuses the request's prompt and returns a context to generate from.</summary>
    /// <exception cref="FusionException">Unknown chunk, chunk of another model, empty query, or a prompt beyond the context.</exception>
    /// <exception cref="ObjectDisposedException">The engine was disposed.</exception>
    public async Task<FusedContext> FuseAsync(FusionRequest request, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_gate.IsClosed, this);
        ArgumentNullException.ThrowIfNull(request);
        var total = Stopwatch.StartNew();
        var stages = new Dictionary<string, TimeSpan>();
        var sw = Stopwatch.StartNew();
        var plan = await _planner.PlanAsync(request, cancellationToken).ConfigureAwait(false);
        stages["tokenize"] = sw.Elapsed;
        var runner = _runners.GetValueOrDefault(request.Mode) ?? throw new FusionException(FusionError.InvalidRequest, $"Unknown mode {request.Mode}.");

        var capacity = Math.Min(Model.Config.MaxPositionEmbeddings, plan.Tokens.Length + Math.Max(0, request.ReserveTokens));
        var memory = _memory is null ? null : await _memory.ReserveAsync(Model.SessionKvBytesFor(capacity), _options.KvMemoryWait, cancellationToken).ConfigureAwait(false);
        try
        {
            await _gate.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            memory?.Dispose();
            throw;
        }

        InferenceSession? session = null;
        var holdsGate = true;
        try
        {
            var created = session = Model.CreateSession(capacity);
            var logits = new float[Model.Config.VocabSize];
            Func<ReadOnlyMemory<int>, CancellationToken, Task> prefiller = async (tokens, ct) =>
                {
                    // Without batching, or once the engine is closing (the request in flight finishes in place, still
                    // holding the gate that disposal waits for), the prompt is computed here.
                    if (_scheduler is not { IsClosed: false } scheduler)
                    {
                        created.Prefill(tokens.Span, logits, cancellationToken: ct);
                        return;
                    }

                    // The prompt goes into the batch in chunks between decode steps; the gate is the loop's meanwhile.
                    _gate.Exit();
                    holdsGate = false;
                    try
                    {
                        await scheduler.PrefillAsync(created, tokens, logits, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        await _gate.EnterAsync(CancellationToken.None).ConfigureAwait(false);
                        holdsGate = true;
                    }
                };
            var run = new FusionRun { Plan = plan, Session = created, Blend = request.Blend, Logits = logits, Stages = stages, Prefiller = prefiller };
            var report = await runner.RunAsync(run, cancellationToken).ConfigureAwait(false);
            report = report with { Total = total.Elapsed, StageTimes = stages };
            ObserveCompute(report);
            _logger.LogDebug("Fused {Tokens} tokens in {Mode} mode in {Milliseconds:F1} ms", report.TotalTokens, report.Mode, report.Total.TotalMilliseconds);
            var context = new FusedContext(session, run.Logits, report, plan.Tokens, _gate, _scheduler, this, memory);
            session = null;
            memory = null;
            return context;
        }
        finally
        {
            session?.Dispose();
            memory?.Dispose();
            if (holdsGate)
            {
                _gate.Exit();
            }
        }
    }

    private void ObserveCompute(FusionReport report)
    {
        if (_options.CostModel is not { } costs || !report.StageTimes.TryGetValue("compute", out var compute))
        {
            return;
        }

        var tokenLayers = 0L;
        foreach (var rows in report.RecomputedPerLayer)
        {
            tokenLayers += rows;
        }

        if (tokenLayers > 0)
        {
            costs.ObserveRecompute(Model.Fingerprint.Model, tokenLayers, compute);
        }
    }

    /// <summary>
    /// An engine over the same model and the same compute queue that stores in <paramref name="store"/> (another
    /// tenant's namespace, say): requests of every such engine take turns on the one backend. Concurrent puts of one
    /// chunk are shared within the returned engine only, since the same chunk is a different entry in another store.
    /// Disposing the returned engine does nothing; disposing this one closes the queue for all of them.
    /// </summary>
    public FusionEngine WithStore(IKvStore store) => new(Model, store, _options, _logger, _gate, _scheduler, _memory, ownsGate: false);

    /// <summary>The batch scheduler (null without batching), for tests.</summary>
    internal BatchScheduler? Scheduler => _scheduler;

    /// <summary>Bytes of KV memory reserved by live contexts now (0 without <see cref="FusionEngineOptions.MaxSessionKvBytes"/>).</summary>
    public long ReservedKvBytes => _memory?.Reserved ?? 0;

    /// <summary>Generations decoding in the engine's batch now (0 without batching).</summary>
    public int RunningGenerations => _scheduler?.Running ?? 0;

    /// <summary>
    /// Refuses new work, ends running generations and fails queued work with <see cref="ObjectDisposedException"/>, and
    /// waits for the computation in progress to finish.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_ownsGate)
        {
            if (_scheduler is not null)
            {
                await _scheduler.DisposeAsync().ConfigureAwait(false);
            }

            await _gate.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Refuses new work, fails queued work, and blocks until the computation in progress (one fusion, precompute or
    /// decode step) has finished. Do not call it from inside a store callback of this engine.
    /// </summary>
    public void Dispose()
    {
        if (_ownsGate)
        {
            _scheduler?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _gate.Dispose();
        }
    }

    private async Task PrecomputeAsync(ChunkTarget target, CancellationToken ct)
    {
        Interlocked.Increment(ref _precomputesStarted);
        await _gate.EnterAsync(ct).ConfigureAwait(false);
        try
        {
            // A request may have stored the chunk while this put queued.
            if (await Store.ContainsAsync(target.Key, ct).ConfigureAwait(false))
            {
                return;
            }

            var started = Stopwatch.GetTimestamp();
            var entry = ChunkPrecomputer.Compute(Model, target.Key, target.Sink, target.Tokens, _options.HiddenStateLayers, ct);
            _options.CostModel?.ObservePrefill(Model.Fingerprint.Model, (long)(target.Sink.Length + target.Tokens.Length) * Model.Config.LayerCount, Stopwatch.GetElapsedTime(started));
            await Store.PutAsync(entry, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Exit();
        }
    }
}
