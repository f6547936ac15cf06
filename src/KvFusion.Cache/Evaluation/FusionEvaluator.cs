using System.Diagnostics;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Sharing;
using KvFusion.Engine.Generation;

namespace KvFusion.Cache.Evaluation;

/// <summary>One mode's results over a case set (agreements are fractions in [0, 1]).</summary>
public sealed record FusionModeResult
{
    /// <summary>The mode as written (e.g. <c>blend:0.15</c>).</summary>
    public required string Mode { get; init; }

    /// <summary>Cases evaluated.</summary>
    public required int Cases { get; init; }

    /// <summary>Mean KL(full ‖ mode) of next-token distributions over the teacher-forced answer.</summary>
    public required double MeanKl { get; init; }

    /// <summary>Fraction of answer positions whose argmax equals full's.</summary>
    public required double Top1Agreement { get; init; }

    /// <summary>Fraction of cases whose greedy continuation equals full's exactly.</summary>
    public required double GreedyMatch { get; init; }

    /// <summary>Mean fraction of the greedy continuation that matches full's before the first difference.</summary>
    public required double GreedyPrefixAgreement { get; init; }

    /// <summary>Mean negative log-likelihood of the answer tokens (nats per token).</summary>
    public required double AnswerNll { get; init; }

    /// <summary>Median time to first token (fusion + first token), ms.</summary>
    public required double TtftMs { get; init; }

    /// <summary>Full's TTFT over this mode's (same run).</summary>
    public required double TtftRatioToFull { get; init; }

    /// <summary>Fraction of (token, layer) pairs computed relative to full prefill.</summary>
    public required double ComputeFraction { get; init; }

    /// <summary>Each case's measures, in case order.</summary>
    public IReadOnlyList<FusionCaseResult> PerCase { get; init; } = [];

    /// <summary>Mean prompt tokens per case.</summary>
    public required double PromptTokens { get; init; }
}

/// <summary>One case under one mode: its quality against full, and blend's estimate and gate decision.</summary>
/// <param name="Case">The case's index in the case file (from 0).</param>
/// <param name="MeanKl">Mean KL(full ‖ mode) over the case's answer positions.</param>
/// <param name="Top1Agreement">Share of the answer positions whose argmax matches full's.</param>
/// <param name="Quality">Blend's estimate and gate decision (null for other modes).</param>
public sealed record FusionCaseResult(int Case, double MeanKl, double Top1Agreement, FusionQuality? Quality);

/// <summary>Options of <see cref="FusionEvaluator"/>.</summary>
public sealed record FusionEvaluationOptions
{
    /// <summary>Greedy continuation length compared with full's.</summary>
    public int GreedyTokens { get; init; } = 24;

    /// <summary>Timed fusions per case and mode (the median is kept), after one untimed warm-up.</summary>
    public int TtftRuns { get; init; } = 3;

    /// <summary>The sink chunks are precomputed behind (null: the engine's default).</summary>
    public SinkKind? Sink { get; init; }

    /// <summary>
    /// Cross-model sharing: the sender's engine (its model and store). Share modes fuse the chunks it stored, which it
    /// computes before timing; its <see cref="FusionEngineOptions.HiddenStateLayers"/> must cover the ranges' starts.
    /// </summary>
    public FusionEngine? Sender { get; init; }

    /// <summary>The ranges of a <c>share</c> mode that names none (a loaded profile's); null: such a mode is refused.</summary>
    public RecomputeRanges? DefaultRecompute { get; init; }

    /// <summary>The quality gate's floor applied to every blend mode (null: estimates are reported, nothing is gated).</summary>
    public double? QualityFloor { get; init; }
}

/// <summary>
/// The quality and speed harness: for each case and mode, fuse, compare the next-token distributions over the
/// teacher-forced answer and the greedy continuation with full recompute, and time the fusion, all in one run.
/// Chunk caches are precomputed before timing (they are computed offline in production).
/// </summary>
public sealed class FusionEvaluator(FusionEngine engine, FusionEvaluationOptions? options = null)
{
    private readonly FusionEvaluationOptions _options = options ?? new FusionEvaluationOptions();

    /// <summary>Evaluates every mode on every case.</summary>
    public async Task<IReadOnlyList<FusionModeResult>> EvaluateAsync(
        IReadOnlyList<FusionCase> cases, IReadOnlyList<FusionModeSpec> modes, IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cases);
        ArgumentNullException.ThrowIfNull(modes);
        var vocab = engine.Model.Config.VocabSize;
        var acc = modes.Select(_ => new Accumulator()).ToArray();
        // Every answer is checked before any case is computed, so a bad case file fails at once.
        var answers = new int[cases.Count][];
        for (var i = 0; i < cases.Count; i++)
        {
            answers[i] = engine.Tokenize(cases[i].Answer);
            if (answers[i].Length == 0)
            {
                throw new FusionException(FusionError.InvalidRequest, $"Case {i + 1} has an empty answer: quality is measured over the answer's tokens.");
            }
        }

        var done = 0;
        for (var ci = 0; ci < cases.Count; ci++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var c = cases[ci];
            var answer = answers[ci];

            foreach (var chunk in c.Chunks)
            {
                await engine.PutChunkAsync(ChunkInput.FromText(chunk), _options.Sink, c.Prefix, cancellationToken).ConfigureAwait(false);
                if (_options.Sender is { } sender)
                {
                    await sender.PutChunkAsync(ChunkInput.FromText(chunk), _options.Sink, c.Prefix, cancellationToken).ConfigureAwait(false);
                }
            }

            // Full first: it is the reference for every other mode.
            var reference = await RunModeAsync(c, new FusionModeSpec(FusionMode.Full, 1), answer, cancellationToken).ConfigureAwait(false);
            for (var m = 0; m < modes.Count; m++)
            {
                var run = modes[m].Mode == FusionMode.Full && modes[m].Variant is null
                    ? reference
                    : await RunModeAsync(c, modes[m], answer, cancellationToken).ConfigureAwait(false);
                acc[m].Add(ci, reference, run, answer, vocab);
                progress?.Report((++done, cases.Count * modes.Count));
            }
        }

        var fullTtft = Median(acc.SelectMany((a, i) => modes[i].Mode == FusionMode.Full ? a.Ttft : []).ToList());
        if (double.IsNaN(fullTtft))
        {
            fullTtft = double.NaN;
        }

        return modes.Select((m, i) => acc[i].Result(m.ToString(), fullTtft)).ToList();
    }

    private sealed class ModeRun
    {
        public required float[][] Distributions { get; init; }

        public required int[] Greedy { get; init; }

        public required double TtftMs { get; init; }

        public required double ComputeFraction { get; init; }

        public required int PromptTokens { get; init; }

        public FusionQuality? Quality { get; init; }
    }

    private async Task<ModeRun> RunModeAsync(FusionCase c, FusionModeSpec spec, int[] answer, CancellationToken ct)
    {
        var (mode, blend) = FusionModeCatalog.Resolve(spec);
        blend = blend with { QualityFloor = _options.QualityFloor };
        var request = new FusionRequest
        {
            Prefix = c.Prefix,
            Chunks = c.Chunks.Select(ChunkInput.FromText).ToList(),
            Query = c.Query,
            Mode = mode,
            Blend = blend,
            Sink = _options.Sink,
            SharedFrom = mode == FusionMode.Share || spec.Recompute is not null ? Shared(spec) : null,
            ReserveTokens = Math.Max(answer.Length, _options.GreedyTokens) + 1,
        };

        // One untimed warm-up (it also stores prefix blocks for prefix mode), then timed fusions.
        using (var warm = await engine.FuseAsync(request, ct).ConfigureAwait(false))
        {
            _ = TokenSampler.ArgMax(warm.Logits);
        }

        var times = new List<double>();
        for (var i = 0; i < Math.Max(1, _options.TtftRuns); i++)
        {
            var sw = Stopwatch.StartNew();
            using var timed = await engine.FuseAsync(request, ct).ConfigureAwait(false);
            _ = TokenSampler.ArgMax(timed.Logits);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        using var context = await engine.FuseAsync(request, ct).ConfigureAwait(false);
        var session = context.Session;
        var promptLength = session.Length;
        var first = (float[])context.Logits.Clone();

        // Greedy continuation.
        var greedy = new int[_options.GreedyTokens];
        var logits = (float[])first.Clone();
        for (var i = 0; i < greedy.Length; i++)
        {
            greedy[i] = TokenSampler.ArgMax(logits);
            if (i + 1 < greedy.Length)
            {
                session.Decode(greedy[i], logits);
            }
        }

        // Teacher-forced answer: the distribution before each answer token.
        session.Cache.Truncate(promptLength);
        var distributions = new float[answer.Length][];
        distributions[0] = first;
        if (answer.Length > 1)
        {
            var forced = answer.AsSpan(0, answer.Length - 1);
            var slots = new int[forced.Length];
            for (var i = 0; i < slots.Length; i++)
            {
                slots[i] = promptLength + i;
            }

            var pass = session.BeginPass(forced, slots, slots);
            pass.RunRemainingLayers();
            for (var i = 0; i < forced.Length; i++)
            {
                distributions[i + 1] = new float[first.Length];
                pass.ComputeLogits(i, distributions[i + 1]);
            }
        }

        return new ModeRun
        {
            Distributions = distributions,
            Greedy = greedy,
            TtftMs = Median(times),
            ComputeFraction = context.Report.ComputeFraction,
            PromptTokens = context.Report.TotalTokens,
            Quality = context.Report.Quality,
        };
    }

    private SharedCacheSource Shared(FusionModeSpec spec)
    {
        var sender = _options.Sender ?? throw new FusionException(FusionError.InvalidRequest, $"Mode {spec} shares a sender's caches, and no sender model was given.");
        var ranges = spec.Recompute ?? _options.DefaultRecompute
            ?? throw new FusionException(FusionError.InvalidRequest, $"Mode {spec} names no recompute ranges and no sharing profile was loaded: write share:RANGES (e.g. share:0-1) or load a profile.");
        return SharedCacheSource.From(sender.Model, sender.Store, ranges);
    }

    private static double Median(List<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        values.Sort();
        var mid = values.Count / 2;
        return values.Count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }

    private sealed class Accumulator
    {
        private double _kl;
        private int _positions;
        private int _top1;
        private int _greedyExact;
        private double _greedyPrefix;
        private double _nll;
        private int _cases;
        private double _compute;
        private double _prompt;

        private readonly List<FusionCaseResult> _perCase = [];

        public List<double> Ttft { get; } = [];

        public void Add(int caseIndex, ModeRun reference, ModeRun run, int[] answer, int vocab)
        {
            var (klBefore, top1Before) = (_kl, _top1);
            var p = new double[vocab];
            var q = new double[vocab];
            for (var i = 0; i < answer.Length; i++)
            {
                NextTokenDivergence.Softmax(reference.Distributions[i], p);
                NextTokenDivergence.Softmax(run.Distributions[i], q);
                double kl = 0;
                for (var v = 0; v < vocab; v++)
                {
                    if (p[v] > 0)
                    {
                        kl += p[v] * (Math.Log(p[v]) - Math.Log(Math.Max(q[v], 1e-30)));
                    }
                }

                _kl += Math.Max(0, kl);
                _nll += -Math.Log(Math.Max(q[answer[i]], 1e-30));
                if (TokenSampler.ArgMax(reference.Distributions[i]) == TokenSampler.ArgMax(run.Distributions[i]))
                {
                    _top1++;
                }

                _positions++;
            }

            _perCase.Add(new FusionCaseResult(caseIndex, (_kl - klBefore) / answer.Length, (double)(_top1 - top1Before) / answer.Length, run.Quality));
            var same = 0;
            while (same < run.Greedy.Length && run.Greedy[same] == reference.Greedy[same])
            {
                same++;
            }

            _greedyExact += same == run.Greedy.Length ? 1 : 0;
            _greedyPrefix += run.Greedy.Length == 0 ? 1 : (double)same / run.Greedy.Length;
            _compute += run.ComputeFraction;
            _prompt += run.PromptTokens;
            Ttft.Add(run.TtftMs);
            _cases++;
        }

        public FusionModeResult Result(string mode, double fullTtft)
        {
            var ttft = Median([.. Ttft]);
            return new FusionModeResult
            {
                Mode = mode,
                Cases = _cases,
                MeanKl = _positions == 0 ? double.NaN : _kl / _positions,
                Top1Agreement = _positions == 0 ? double.NaN : (double)_top1 / _positions,
                GreedyMatch = _cases == 0 ? double.NaN : (double)_greedyExact / _cases,
                GreedyPrefixAgreement = _cases == 0 ? double.NaN : _greedyPrefix / _cases,
                AnswerNll = _positions == 0 ? double.NaN : _nll / _positions,
                TtftMs = ttft,
                TtftRatioToFull = fullTtft / ttft,
                ComputeFraction = _cases == 0 ? double.NaN : _compute / _cases,
                PromptTokens = _cases == 0 ? 0 : _prompt / _cases,
                PerCase = [.. _perCase],
            };
        }
    }
}
