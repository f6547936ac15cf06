using KvFusion.Engine.Models;
using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Models;

/// <summary>Which models may share each other's KV caches: one family (architecture, shapes, tokenizer), weights aside.</summary>
[Collection(SharedModelsGroup.Name)]
public sealed class ModelCompatibilityTests(CpuModelFixture fixture)
{
    [SkippableFact]
    public void The_fine_tune_and_its_base_are_one_family_both_ways()
    {
        var (base_, coder) = (fixture.Model("tiny-pydocs"), fixture.Model("tiny-pydocs-coder"));

        Assert.NotEqual(base_.Fingerprint.Model, coder.Fingerprint.Model);
        Assert.True(ModelCompatibility.Check(base_.Config, base_.Fingerprint, coder.Config, coder.Fingerprint).IsCompatible);
        Assert.Null(ModelCompatibility.Check(coder.Config, coder.Fingerprint, base_.Config, base_.Fingerprint).Reason);
    }

    [SkippableFact]
    public void Another_architecture_is_refused_naming_it()
    {
        var (tiny, qwen) = (fixture.Model("tiny-pydocs"), fixture.Model("zoo/qwen2-bias"));

        var result = ModelCompatibility.Check(qwen.Config, qwen.Fingerprint, tiny.Config, tiny.Fingerprint);

        Assert.False(result.IsCompatible);
        Assert.Contains("architecture differs", result.Reason, StringComparison.Ordinal);
        Assert.Contains("Qwen2", result.Reason, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_different_shape_or_tokenizer_is_refused_with_both_values()
    {
        var tiny = fixture.Model("tiny-pydocs");
        var c = tiny.Config;

        var heads = ModelCompatibility.Check(c with { KvHeadCount = c.KvHeadCount * 2 }, tiny.Fingerprint.Tokenizer, c, tiny.Fingerprint.Tokenizer);
        var layers = ModelCompatibility.Check(c with { LayerCount = c.LayerCount + 2 }, tiny.Fingerprint.Tokenizer, c, tiny.Fingerprint.Tokenizer);
        var rope = ModelCompatibility.Check(c with { Rope = c.Rope with { Theta = c.Rope.Theta * 10 } }, tiny.Fingerprint.Tokenizer, c, tiny.Fingerprint.Tokenizer);
        var tokenizer = ModelCompatibility.Check(c, new string('a', 64), c, tiny.Fingerprint.Tokenizer);

        Assert.Equal($"the KV heads differs (sender {c.KvHeadCount * 2}, receiver {c.KvHeadCount})", heads.Reason);
        Assert.Equal($"the layer count differs (sender {c.LayerCount + 2}, receiver {c.LayerCount})", layers.Reason);
        Assert.StartsWith("the RoPE differs", rope.Reason, StringComparison.Ordinal);
        Assert.StartsWith("the tokenizers differ (fingerprints aaaaaaaaaaaa and ", tokenizer.Reason, StringComparison.Ordinal);
        Assert.All([heads, layers, rope, tokenizer], r => Assert.False(r.IsCompatible));
    }
}
