using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using static KvFusion.Cache.Tests.Sharing.ShareModeTests;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>
/// Blend's per-request quality gate: an estimate on every blend, a floor that fuses again at a raised ratio or falls
/// back to full, and a full fallback that answers exactly as full would.
/// </summary>
public sealed class QualityGateTests : IDisposable
{
    private static readonly string[] Chunks =
    [
        "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.",
        "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.",
        "The pathlib module offers classes representing filesystem paths with semantics appropriate for different operating systems.",
    ];

    private const string Query = "Explain how the json module serializes";

    private readonly CpuModelFixture _models = new();

    public void Dispose() => _models.Dispose();

    private static FusionRequest Request(BlendOptions blend) => new()
    {
        Chunks = [.. Chunks.Select(ChunkInput.FromText)],
        Query = Query,
        Mode = FusionMode.Blend,
        Blend = blend,
        ReserveTokens = 8,
    };

    [SkippableFact]
    public async Task Without_a_floor_the_estimate_is_reported_and_the_blend_is_unchanged()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var blend = BlendVariants.Build(null, 0.15);

        var reported = await FuseAsync(engine, Request(blend));

        var q = Assert.IsType<FusionQuality>(reported.Report.Quality);
        Assert.Equal(QualityDecision.Unchecked, q.Decision);
        Assert.True(q.EstimatedKl > 0 && double.IsFinite(q.EstimatedKl), $"estimate {q.EstimatedKl}");
        Assert.Equal(q.EstimatedKl, q.RequestedEstimatedKl);
        Assert.Equal(0.15, q.Ratio, 6);
        Assert.Null(q.Floor);
        Assert.Equal(TimeSpan.Zero, q.Cost);
    }

    [SkippableFact]
    public async Task A_floor_above_the_estimate_passes_with_the_same_answer_as_no_floor()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var blend = BlendVariants.Build(null, 0.15);
        var ungated = await FuseAsync(engine, Request(blend));

        var gated = await FuseAsync(engine, Request(blend with { QualityFloor = ungated.Report.Quality!.EstimatedKl * 2 }));

        Assert.Equal(QualityDecision.Passed, gated.Report.Quality!.Decision);
        Assert.True(MaxAbsDiff(ungated.Logits, gated.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(ungated.Logits, gated.Logits)}");
        Assert.Equal(ungated.Report.RecomputedPerLayer, gated.Report.RecomputedPerLayer);
    }

    [SkippableFact]
    public async Task A_floor_below_the_estimate_raises_the_ratio_once_to_what_the_signal_says_the_floor_needs()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var blend = BlendVariants.Build(null, 0.1);
        var ungated = await FuseAsync(engine, Request(blend));
        var floor = ungated.Report.Quality!.EstimatedKl * 0.8;

        var gated = await FuseAsync(engine, Request(blend with { QualityFloor = floor }));

        var q = gated.Report.Quality!;
        Assert.Equal(QualityDecision.RatioRaised, q.Decision);
        Assert.InRange(q.Ratio, 0.12, 0.6);
        Assert.Equal(0.1, q.RequestedRatio, 6);
        Assert.True(q.EstimatedKl <= floor, $"{q.EstimatedKl} > {floor}");
        Assert.Equal(ungated.Report.Quality.EstimatedKl, q.RequestedEstimatedKl, 5);

        // The raised attempt is the same blend asked for at that ratio, recomputing from layer 0 (no E-cache start);
        // the first attempt is the gate's cost.
        var atRaised = await FuseAsync(engine, Request(BlendVariants.Build(null, q.Ratio) with { StartFromHiddenStates = false }));
        Assert.Equal(atRaised.Report.Quality!.EstimatedKl, q.EstimatedKl, 5);
        Assert.True(MaxAbsDiff(atRaised.Logits, gated.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(atRaised.Logits, gated.Logits)}");
        Assert.Equal(atRaised.Report.RecomputedPerLayer, gated.Report.RecomputedPerLayer);
        Assert.True(q.Cost > TimeSpan.Zero);
        Assert.Equal(q.Cost, gated.Report.StageTimes["gate"]);
    }

    [Theory]
    [InlineData(2.0, 1.0, 0.15)]
    [InlineData(2.0, 0.5, 0.3)]
    public void The_raised_ratio_grows_as_the_signal_must_fall_and_stays_above_the_asked_one(double signal, double target, double ratio)
    {
        var raised = KvFusion.Cache.Fusion.Runners.BlendModeRunner.RatioFor(target, signal, ratio);
        var further = KvFusion.Cache.Fusion.Runners.BlendModeRunner.RatioFor(target / 2, signal, ratio);

        Assert.True(raised > ratio * 1.19, $"{raised}");
        Assert.True(further > raised, $"{further} <= {raised}");
        Assert.Equal(1.0, KvFusion.Cache.Fusion.Runners.BlendModeRunner.RatioFor(0, signal, ratio), 9);
        Assert.Equal(ratio, KvFusion.Cache.Fusion.Runners.BlendModeRunner.RatioFor(signal, signal, ratio), 9);
    }

    [SkippableFact]
    public async Task With_every_chunk_token_recomputed_the_estimate_is_zero()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());

        var all = await FuseAsync(engine, Request(BlendVariants.Build(null, 1.0)));

        Assert.Equal(0, all.Report.Quality!.Signal);
        Assert.Equal(0, all.Report.Quality.EstimatedKl);
    }

    [SkippableTheory]
    [InlineData(null)]
    [InlineData("ecachegradual")]
    public async Task A_floor_no_ratio_reaches_falls_back_to_full_and_answers_as_full(string? variant)
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [1, 2] });
        var full = await FuseAsync(engine, Request(new BlendOptions()) with { Mode = FusionMode.Full });

        var gated = await FuseAsync(engine, Request(BlendVariants.Build(variant, 0.15) with { QualityFloor = 0 }));

        var q = gated.Report.Quality!;
        Assert.Equal(QualityDecision.FellBackToFull, q.Decision);
        Assert.Equal(1, q.Ratio);
        Assert.True(q.RequestedEstimatedKl > 0);
        Assert.True(q.Cost > TimeSpan.Zero);
        Assert.True(MaxAbsDiff(full.Logits, gated.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, gated.Logits)}");
        Assert.Equal(full.Greedy, gated.Greedy);
        Assert.All(gated.Report.RecomputedPerLayer, n => Assert.Equal(gated.Report.TotalTokens, n));
    }

    [SkippableFact]
    public async Task The_gate_never_raises_past_its_limit()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var limited = BlendVariants.Build(null, 0.1) with { GateMaxRatio = 0.3 };
        var atLimit = await FuseAsync(engine, Request(BlendVariants.Build(null, 0.3) with { StartFromHiddenStates = false }));

        // A floor only a ratio above the limit could meet: the gate stops at 0.3 and falls back.
        var gated = await FuseAsync(engine, Request(limited with { QualityFloor = atLimit.Report.Quality!.EstimatedKl * 0.5 }));

        Assert.Equal(QualityDecision.FellBackToFull, gated.Report.Quality!.Decision);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void A_floor_that_is_not_a_kl_is_refused(double floor)
    {
        var e = Assert.Throws<InvalidOperationException>(() => new BlendOptions { QualityFloor = floor }.Validate(6));
        Assert.Contains("quality floor", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1.5)]
    public void A_gate_limit_outside_zero_to_one_is_refused(double limit)
    {
        var e = Assert.Throws<InvalidOperationException>(() => new BlendOptions { GateMaxRatio = limit }.Validate(6));
        Assert.Contains("GateMaxRatio", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Other_modes_carry_no_estimate()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        foreach (var mode in new[] { FusionMode.Full, FusionMode.Reuse, FusionMode.Prefix })
        {
            var fused = await FuseAsync(engine, Request(new BlendOptions()) with { Mode = mode });
            Assert.Null(fused.Report.Quality);
        }
    }
}
