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
        var blended = await FuseAsync(engine, alone with { Mode = FusionMode.Blend, Blend = BlendVariants.Build(variant, 1.0) });

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

        var plain = await FuseAsync(engine, request with { Blend = BlendVariants.Build(BlendVariants.Default, 0.15) });
        var fromHidden = await FuseAsync(engine, request with { Blend = BlendVariants.Build("ecache", 0.15) });

        Assert.Equal(plain.Report.TotalTokens, plain.Report.RecomputedPerLayer[0]);
        Assert.Equal(fromHidden.Report.QueryTokens, fromHidden.Report.RecomputedPerLayer[0]);
        Assert.Equal(plain.Report.RecomputedPerLayer.Skip(1), fromHidden.Report.RecomputedPerLayer.Skip(1));
        Assert.True(fromHidden.Report.ComputeFraction < plain.Report.ComputeFraction);
    }

    [SkippableFact]
    public async Task A_chunk_stored_without_the_check_layers_e_cache_is_refused_by_name()
    {
        using var engine = new FusionEngine(_models.Tiny, new InMemoryKvStore(), new FusionEngineOptions { HiddenStateLayers = [1] });
        var request = new FusionRequest { Chunks = [ChunkInput.FromText(Chunk)], Query = Query, Mode = FusionMode.Blend, Blend = BlendVariants.Build("ecache2", 0.15), ReserveTokens = 8 };

        var e = await Assert.ThrowsAsync<FusionException>(() => engine.FuseAsync(request));

        Assert.Equal(FusionError.MissingHiddenState, e.Error);
        Assert.Contains("E-cache of layer 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Starting_from_the_e_cache_needs_a_check_layer_above_zero()
    {
        var options = new BlendOptions { StartFromHiddenStates = true, Schedule = [new SelectionStep(0, 0.3)] };
        var e = Assert.Throws<InvalidOperationException>(() => options.Validate(6));
        Assert.Contains("first check layer above 0", e.Message, StringComparison.Ordinal);
    }
}
