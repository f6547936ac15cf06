using KvFusion.Cache.Fusion;
using KvFusion.Cache.Storage;
using static KvFusion.Cache.Tests.Sharing.ShareModeTests;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>
/// Blend whose chunk tokens start at the check layer from the stored E-cache: exact where the chunk's stored context
/// is the fused one, cheaper below the check layer, and refused without the E-cache it needs.
/// </summary>
public sealed class BlendHiddenStateTests : IDisposable
{
    private const string Chunk = "The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation known as JavaScript Object Notation.";
    private const string Other = "A list comprehension consists of brackets containing an expression followed by a for clause, then zero or more for or if clauses.";
    private const string Query = "Explain how the json module serializes";

    private readonly CpuModelFixture _models = new();

    public void Dispose() => _models.Dispose();

    [SkippableTheory]
    [InlineData("ecache", 1)]
    [InlineData("ecache2", 2)]
    [InlineData("ecache3", 3)]
    public async Task With_every_token_selected_a_lone_chunk_started_from_its_e_cache_equals_full_up_to_fp16(string variant, int checkLayer)
    {
        // One chunk alone, stored without a sink: the context it was computed in is the fused one, so its stored
        // hidden state entering the check layer is exactly what full prefill has there (up to fp16 storage).
        var model = _models.Tiny;
        using var engine = new FusionEngine(model, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [checkLayer] });
        await engine.PutChunkAsync(ChunkInput.FromText(Chunk), SinkKind.None);
        var alone = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk)], Query = Query, Sink = SinkKind.None, ReserveTokens = 16 };

        var full = await FuseAsync(engine, alone with { Mode = FusionMode.Full });

        // Just under 1 keeps every token yet still starts from the E-cache (at 1 blend recomputes everything, as full).
        var blended = await FuseAsync(engine, alone with { Mode = FusionMode.Blend, Blend = BlendVariants.Build(variant, 1 - 1e-6) });
        Assert.True(blended.Report.StartedFromHiddenStates);
        Assert.All(blended.Report.Selection, s => Assert.Equal(s.Candidates, s.Selected));

        Assert.True(MaxAbsDiff(full.Logits, blended.Logits) <= 0.05f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, blended.Logits)}");
        Assert.Equal(full.Greedy, blended.Greedy);
        for (var l = 0; l < checkLayer; l++)
        {
            Assert.Equal(blended.Report.QueryTokens, blended.Report.RecomputedPerLayer[l]);
        }

        Assert.Equal(blended.Report.TotalTokens, blended.Report.RecomputedPerLayer[checkLayer]);
    }

    [SkippableFact]
    public async Task Below_the_check_layer_only_the_query_is_computed()
    {
        var model = _models.Tiny;
        using var engine = new FusionEngine(model, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [1] });
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk), ChunkInput.FromText(Other)], Query = Query, Mode = FusionMode.Blend, ReserveTokens = 8 };

        var plain = await FuseAsync(engine, request with { Blend = BlendVariants.Build("qattn", 0.15) });
        var fromHidden = await FuseAsync(engine, request with { Blend = BlendVariants.Build("ecache", 0.15) });

        Assert.Equal(plain.Report.TotalTokens, plain.Report.RecomputedPerLayer[0]);
        Assert.Equal(fromHidden.Report.QueryTokens, fromHidden.Report.RecomputedPerLayer[0]);
        Assert.Equal(plain.Report.RecomputedPerLayer.Skip(1), fromHidden.Report.RecomputedPerLayer.Skip(1));
        Assert.True(fromHidden.Report.ComputeFraction < plain.Report.ComputeFraction);
    }

    [SkippableFact]
    public async Task A_chunk_stored_without_the_check_layers_e_cache_is_fused_recomputing_the_layers_below()
    {
        // Stored with layer 1's E-cache only: a blend checking at layer 2 cannot start there, so it recomputes layers
        // 0-1 for its chunk tokens, exactly as the same blend without the switch.
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [1] });
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk), ChunkInput.FromText(Other)], Query = Query, Mode = FusionMode.Blend, ReserveTokens = 8 };
        var ecache2 = BlendVariants.Build("ecache2", 0.15);

        var fused = await FuseAsync(engine, request with { Blend = ecache2 });
        var without = await FuseAsync(engine, request with { Blend = ecache2 with { StartFromHiddenStates = false } });

        Assert.False(fused.Report.StartedFromHiddenStates);
        Assert.True(MaxAbsDiff(without.Logits, fused.Logits) <= 1e-4f, $"max |Δlogit| = {MaxAbsDiff(without.Logits, fused.Logits)}");
        Assert.Equal(without.Report.RecomputedPerLayer, fused.Report.RecomputedPerLayer);
    }

    [SkippableFact]
    public async Task The_default_blend_at_ratio_one_equals_full_over_several_chunks()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk), ChunkInput.FromText(Other)], Query = Query, ReserveTokens = 8 };

        var full = await FuseAsync(engine, request with { Mode = FusionMode.Full });
        var all = await FuseAsync(engine, request with { Mode = FusionMode.Blend, Blend = BlendOptions.Default(1.0) });

        Assert.False(all.Report.StartedFromHiddenStates);
        Assert.True(MaxAbsDiff(full.Logits, all.Logits) <= 0.05f, $"max |Δlogit| = {MaxAbsDiff(full.Logits, all.Logits)}");
        Assert.Equal(full.Greedy, all.Greedy);
    }

    [SkippableFact]
    public async Task The_default_blend_starts_from_the_e_cache_the_engine_stores_by_default()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore());
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk), ChunkInput.FromText(Other)], Query = Query, ReserveTokens = 8 };

        var fused = await FuseAsync(engine, request);

        Assert.Equal(FusionMode.Blend, request.Mode);
        Assert.True(fused.Report.StartedFromHiddenStates);
        Assert.Equal(fused.Report.QueryTokens, fused.Report.RecomputedPerLayer[0]);
    }

    [Fact]
    public void The_default_schedule_fits_a_model_too_shallow_for_its_second_check_layer()
    {
        var fitted = BlendOptions.Default(0.15).FitTo(2);

        Assert.Equal([new SelectionStep(1, 0.15)], fitted.Steps());
        fitted.Validate(2);
        Assert.Equal(BlendOptions.Default(0.15).Steps(), BlendOptions.Default(0.15).FitTo(6).Steps());
    }

    [Fact]
    public void Starting_from_the_e_cache_needs_a_check_layer_above_zero()
    {
        var options = new BlendOptions { StartFromHiddenStates = true, Schedule = [new SelectionStep(0, 0.3)] };
        var e = Assert.Throws<InvalidOperationException>(() => options.Validate(6));
        Assert.Contains("first check layer above 0", e.Message, StringComparison.Ordinal);
    }
}
