using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Transformer;

/// <summary>
/// Restarting a pass at a layer from the hidden states entering it (what cross-model sharing does with an E-cache):
/// from the same model's own states it is the uninterrupted pass; bad arguments are refused before anything runs.
/// </summary>
[Collection(SharedModelsGroup.Name)]
public sealed class ForwardPassRestartTests(CpuModelFixture fixture)
{
    private static readonly int[] Ids = [26, 817, 334, 2970, 14, 68, 689, 14, 80, 1078, 68, 689];

    [SkippableFact]
    public void A_pass_restarted_at_a_layer_from_its_own_hidden_states_gives_the_same_logits()
    {
        var model = fixture.Model("tiny-pydocs");
        var c = model.Config;
        var slots = Enumerable.Range(0, Ids.Length).ToArray();
        var straight = new float[c.VocabSize];
        using (var session = model.CreateSession(Ids.Length))
        {
            var pass = session.BeginPass(Ids, slots, slots);
            pass.RunRemainingLayers();
            pass.ComputeLogits(Ids.Length - 1, straight);
        }

        var restarted = new float[c.VocabSize];
        using (var session = model.CreateSession(Ids.Length))
        {
            var pass = session.BeginPass(Ids, slots, slots);
            pass.RunLayer(0);
            pass.RunLayer(1);
            pass.RunLayer(2);
            var hidden = new float[Ids.Length * c.HiddenSize];
            pass.DownloadHidden(hidden);

            // A new pass over the same rows: embedded again, then moved to layer 3 with the states read above.
            pass = session.BeginPass(Ids, slots, slots);
            pass.StartAt(3, hidden);
            Assert.Equal(3, pass.NextLayer);
            pass.RunRemainingLayers();
            pass.ComputeLogits(Ids.Length - 1, restarted);
        }

        Assert.Equal(straight, restarted);
    }

    [SkippableFact]
    public void Restart_and_read_refuse_a_wrong_layer_a_wrong_size_or_a_layer_in_progress()
    {
        var model = fixture.Model("tiny-pydocs");
        var c = model.Config;
        var slots = Enumerable.Range(0, Ids.Length).ToArray();
        using var session = model.CreateSession(Ids.Length);
        var pass = session.BeginPass(Ids, slots, slots);
        var hidden = new float[Ids.Length * c.HiddenSize];

        Assert.Throws<ArgumentOutOfRangeException>(() => pass.StartAt(c.LayerCount, hidden));
        Assert.Throws<ArgumentOutOfRangeException>(() => pass.StartAt(-1, hidden));
        Assert.Throws<ArgumentException>(() => pass.StartAt(1, hidden.AsSpan(1)));
        Assert.Throws<ArgumentException>(() => pass.DownloadHidden(new float[hidden.Length + 1]));
        pass.ComputeQkv(0);
        Assert.Throws<InvalidOperationException>(() => pass.DownloadHidden(hidden));
        Assert.Throws<InvalidOperationException>(() => pass.StartAt(2, hidden));
    }
}
