namespace KvFusion.Cache.Loading;

/// <summary>
/// Picks, per request, the blend ratio and, per chunk, a stored level or the text, to minimise TTFT under a quality
/// budget or to meet a TTFT deadline at the best quality, from costs measured on the running machine.
/// </summary>
/// <remarks>
/// <para>TTFT is modelled from the transfer time (reads share one link: their times add) and the compute times
/// (decode, blend recompute, chunks computed from text and the query: one CPU or GPU, so they add), as
/// <see cref="LoadOverlap"/> says they overlap: not at all; layer by layer (the longer plus one layer's share of the
/// shorter); or reads beside the chunks computed from text, with decodes, which take the same cores, added to the
/// fusion's own compute. Quality is the mean KL per chunk token:
/// the codec's KL plus the ratio's for a stored chunk, the ratio's alone for text (computed here, as lossless).</para>
/// <para>The search is exact: per ratio, partial plans are extended chunk by chunk and only the Pareto front of
/// their five sums (<see cref="Sums"/>) is kept. TTFT and KL grow with each sum, so an optimal plan's every prefix is
/// on the front. Unlike CacheGen's loader (one deadline share per chunk, chunks chosen independently),
/// slack on one chunk pays for another, and transfer overlaps compute.</para>
/// </remarks>
public sealed class LoadController(ILoadCosts costs)
{
    /// <summary>Partial plans kept per chunk before the front is thinned (exact below it).</summary>
    public const int MaxFront = 2048;

    /// <summary>The costs plans are made with (the running <see cref="LoadCostModel"/>, or a synthetic one).</summary>
    public ILoadCosts Costs { get; } = costs ?? throw new ArgumentNullException(nameof(costs));

    /// <summary>Plans <paramref name="request"/>; options whose cost is not measured yet are left out.</summary>
    /// <exception cref="LoadPlanningException">A chunk has no option that can be costed, or the request is malformed.</exception>
    public LoadPlan Plan(LoadRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        Validate(request);
        var chunkTokens = 0L;
        foreach (var chunk in request.Chunks)
        {
            chunkTokens += chunk.Tokens;
        }

        var query = Costs.RecomputeSeconds((double)request.QueryTokens * request.Layers)
            ?? throw new LoadPlanningException("No recompute time has been measured yet, so no plan can be costed.");
        var candidates = new List<Candidate>();
        foreach (var ratio in request.Ratios)
        {
            var priced = Price(request, ratio, Costs);
            foreach (var state in Search(priced))
            {
                candidates.Add(Evaluate(request, ratio, priced, state, query, chunkTokens));
            }
        }

        var chosen = candidates[Select(request.Goal, candidates)];
        var choices = new LoadChoice[request.Chunks.Count];
        for (var node = chosen.State.Node; node is not null; node = node.Parent)
        {
            var option = chosen.Priced[node.Chunk][node.Option];
            var sums = option.Sums;
            choices[node.Chunk] = new LoadChoice(option.Index, request.Chunks[node.Chunk].Options[option.Index], sums.Transfer, sums.Decode + sums.Recompute + sums.Text);
        }

        return new LoadPlan
        {
            Ratio = chosen.Ratio,
            Choices = choices,
            PredictedTtft = TimeSpan.FromSeconds(chosen.Ttft),
            PredictedMeanKl = chosen.MeanKl,
            MeetsGoal = chosen.Feasible,
        };
    }

    /// <summary>
    /// The TTFT the model gives for a plan's summed seconds of transfer, decode, blend recompute and chunks computed
    /// from text, plus the query's compute, under <paramref name="overlap"/>.
    /// </summary>
    public static double Ttft(Sums sums, double query, int layers, LoadOverlap overlap)
    {
        var compute = sums.Decode + sums.Recompute + sums.Text + query;
        return overlap switch
        {
            LoadOverlap.Layers => Math.Max(sums.Transfer, compute) + (Math.Min(sums.Transfer, compute) / layers),
            LoadOverlap.Chunks => Math.Max(sums.Transfer, sums.Text) + sums.Decode + sums.Recompute + query,
            _ => sums.Transfer + compute,
        };
    }

    private static void Validate(LoadRequest request)
    {
        if (request.Chunks is null || request.Ratios is null || request.Ratios.Count == 0 || request.Goal is null)
        {
            throw new LoadPlanningException("A load request needs its chunks, at least one allowed ratio and a goal.");
        }

        if (request.Layers < 1 || request.RecomputeLayers < 0 || request.RecomputeLayers > request.Layers || request.QueryTokens < 0 || request.Fp16BytesPerToken < 1)
        {
            throw new LoadPlanningException(
                $"Layers ({request.Layers}), recompute layers ({request.RecomputeLayers}), query tokens ({request.QueryTokens}) and fp16 bytes per token ({request.Fp16BytesPerToken}) are out of range.");
        }

        foreach (var ratio in request.Ratios)
        {
            if (!(ratio.Ratio is >= 0 and <= 1) || !(ratio.Kl >= 0) || double.IsInfinity(ratio.Kl))
            {
                throw new LoadPlanningException($"Ratio {ratio.Ratio} with KL {ratio.Kl} is not a ratio in [0, 1] with a finite KL of zero or more.");
            }
        }

        for (var i = 0; i < request.Chunks.Count; i++)
        {
            var chunk = request.Chunks[i];
            if (chunk is null || chunk.Tokens < 1 || chunk.Options is null || chunk.Options.Count == 0)
            {
                throw new LoadPlanningException($"Chunk {i} needs one token or more and at least one option.");
            }
        }

        if (request.Goal.Deadline is { } deadline && deadline <= TimeSpan.Zero)
        {
            throw new LoadPlanningException($"The deadline must be above zero (got {deadline}).");
        }

        if (!(request.Goal.TtftSlack >= 0) || double.IsInfinity(request.Goal.TtftSlack))
        {
            throw new LoadPlanningException($"The TTFT slack must be a finite fraction of zero or more (got {request.Goal.TtftSlack}).");
        }

        if (request.Goal.MaxMeanKl is { } budget && (!(budget >= 0) || double.IsInfinity(budget)))
        {
            throw new LoadPlanningException($"The quality budget must be a finite KL of zero or more (got {budget}).");
        }
    }

    private static PricedOption[][] Price(LoadRequest request, LoadRatio ratio, ILoadCosts costs)
    {
        var priced = new PricedOption[request.Chunks.Count][];
        var list = new List<PricedOption>();
        for (var c = 0; c < request.Chunks.Count; c++)
        {
            list.Clear();
            var chunk = request.Chunks[c];
            for (var o = 0; o < chunk.Options.Count; o++)
            {
                var option = chunk.Options[o];
                if (option.Source == LoadSource.Text)
                {
                    // Computed here from its text, the chunk's KV is what a lossless level holds: blend still recomputes
                    // its share of it, and the fusion's own KL stays.
                    if (costs.PrefillSeconds((double)chunk.Tokens * request.Layers) is { } text
                        && costs.RecomputeSeconds(ratio.Ratio * chunk.Tokens * request.RecomputeLayers) is { } blended)
                    {
                        list.Add(new PricedOption(o, new Sums(0, 0, blended, text, chunk.Tokens * ratio.Kl)));
                    }

                    continue;
                }

                var transfer = costs.TransferSeconds(option.Tier!, option.Bytes);
                var decode = costs.DecodeSeconds(option.Codec, (long)chunk.Tokens * request.Fp16BytesPerToken);
                var recompute = costs.RecomputeSeconds(ratio.Ratio * chunk.Tokens * request.RecomputeLayers);
                if (transfer is { } t && decode is { } d && recompute is { } r)
                {
                    list.Add(new PricedOption(o, new Sums(t, d, r, 0, chunk.Tokens * (option.CodecKl + ratio.Kl))));
                }
            }

            if (list.Count == 0)
            {
                throw new LoadPlanningException($"Chunk {c} has no option whose cost has been measured (its tiers, codecs or recompute are not observed yet).");
            }

            priced[c] = [.. list];
        }

        return priced;
    }

    private static List<State> Search(PricedOption[][] priced)
    {
        var front = new List<State> { new(default, null) };
        var next = new List<State>();
        for (var c = 0; c < priced.Length; c++)
        {
            next.Clear();
            foreach (var state in front)
            {
                for (var o = 0; o < priced[c].Length; o++)
                {
                    var option = priced[c][o];
                    next.Add(new State(state.Sums + option.Sums, new Node(c, o, state.Node)));
                }
            }

            front = Prune(next);
        }

        return front;
    }

    /// <summary>Keeps the states no other state beats or equals in all five sums (the first of equal ones).</summary>
    private static List<State> Prune(List<State> states)
    {
        states.Sort(static (a, b) => a.Sums.Order.CompareTo(b.Sums.Order));
        var kept = new List<State>();
        foreach (var s in states)
        {
            var dominated = false;
            foreach (var k in kept)
            {
                if (k.Sums.AtMost(s.Sums))
                {
                    dominated = true;
                    break;
                }
            }

            if (!dominated)
            {
                kept.Add(s);
            }
        }

        return kept.Count <= MaxFront ? kept : Thin(kept);
    }

    /// <summary>Past <see cref="MaxFront"/> states, keeps an even spread along transfer time (the search is then approximate).</summary>
    private static List<State> Thin(List<State> kept)
    {
        var thinned = new List<State>(MaxFront);
        var step = kept.Count / (double)MaxFront;
        for (var i = 0; i < MaxFront; i++)
        {
            thinned.Add(kept[(int)(i * step)]);
        }

        return thinned;
    }

    private static Candidate Evaluate(LoadRequest request, LoadRatio ratio, PricedOption[][] priced, State state, double query, long chunkTokens)
    {
        var ttft = Ttft(state.Sums, query, request.Layers, request.Overlap);
        var meanKl = chunkTokens > 0 ? state.Sums.Loss / chunkTokens : 0;
        var goal = request.Goal;
        var feasible = (goal.Deadline is not { } d || ttft <= d.TotalSeconds) && (goal.MaxMeanKl is not { } b || meanKl <= b + 1e-12);
        return new Candidate(ratio, priced, state, ttft, meanKl, feasible);
    }

    /// <summary>
    /// The index of the plan <paramref name="goal"/> prefers. When some plans meet the goal: with a deadline and no
    /// budget, the best quality among them; otherwise the best quality among those within
    /// <see cref="LoadGoal.TtftSlack"/> of the fastest of them. When none does: with a deadline, the fastest; with only
    /// a budget, the best quality. Ties go to the faster, then to the first.
    /// </summary>
    private static int Select(LoadGoal goal, List<Candidate> candidates)
    {
        var anyFeasible = false;
        var fastest = double.PositiveInfinity;
        foreach (var c in candidates)
        {
            if (c.Feasible)
            {
                anyFeasible = true;
                fastest = Math.Min(fastest, c.Ttft);
            }
        }

        var qualityFirst = anyFeasible || goal.Deadline is null;
        var limit = anyFeasible && !(goal.Deadline is not null && goal.MaxMeanKl is null) ? fastest * (1 + goal.TtftSlack) : double.PositiveInfinity;
        var best = -1;
        for (var i = 0; i < candidates.Count; i++)
        {
            var c = candidates[i];
            if (c.Feasible != anyFeasible || c.Ttft > limit)
            {
                continue;
            }

            if (best < 0)
            {
                best = i;
                continue;
            }

            var b = candidates[best];
            var better = qualityFirst ? Lexicographic(c.MeanKl, c.Ttft, b.MeanKl, b.Ttft) : Lexicographic(c.Ttft, c.MeanKl, b.Ttft, b.MeanKl);
            if (better)
            {
                best = i;
            }
        }

        return best;
    }

    private static bool Lexicographic(double a1, double a2, double b1, double b2)
    {
        const double Tie = 1e-12;
        if (Math.Abs(a1 - b1) > Tie * (1 + Math.Abs(b1)))
        {
            return a1 < b1;
        }

        return a2 < b2 - (Tie * (1 + Math.Abs(b2)));
    }

    /// <summary>
    /// Seconds of transfer, decode, blend recompute and text compute, and the KL mass (KL × tokens), of an option or
    /// a (partial) plan; every TTFT model grows with each of them.
    /// </summary>
    public readonly record struct Sums(double Transfer, double Decode, double Recompute, double Text, double Loss)
    {
        /// <summary>A key to sort by before pruning (a state can only be dominated by one sorted before it).</summary>
        public double Order => Transfer + Decode + Recompute + Text + Loss;

        /// <summary>Sum of two.</summary>
        public static Sums operator +(Sums a, Sums b) =>
            new(a.Transfer + b.Transfer, a.Decode + b.Decode, a.Recompute + b.Recompute, a.Text + b.Text, a.Loss + b.Loss);

        /// <summary>Whether every sum is at most <paramref name="other"/>'s.</summary>
        public bool AtMost(Sums other) =>
            Transfer <= other.Transfer && Decode <= other.Decode && Recompute <= other.Recompute && Text <= other.Text && Loss <= other.Loss;
    }

    /// <summary>An option with its predicted sums.</summary>
    private readonly record struct PricedOption(int Index, Sums Sums);

    /// <summary>A step of a partial plan.</summary>
    private sealed record Node(int Chunk, int Option, Node? Parent);

    /// <summary>A partial plan's sums.</summary>
    private readonly record struct State(Sums Sums, Node? Node);

    /// <summary>A complete plan as the selection sees it.</summary>
    private readonly record struct Candidate(LoadRatio Ratio, PricedOption[][] Priced, State State, double Ttft, double MeanKl, bool Feasible);
}
