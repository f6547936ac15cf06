using System.Text.Json;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Diagnostics.Synthetic;
using KvFusion.Engine.Models;

namespace KvFusion.Diagnostics.Tests.Benchmarks;

public sealed class PublishedLlamaBenchTests
{
    private static (string Weights, ModelConfig Config) Identify(string directory) =>
        (ModelFingerprint.HashFiles([Path.Combine(directory, "model.safetensors")]), ModelConfig.Load(directory));

    [SkippableFact]
    public void Tiny_pydocs_weights_get_cpu_md_numbers_under_any_folder_name()
    {
        var source = SharedModels.Path("tiny-pydocs");
        using var temp = new TempDirectory();
        var renamed = Directory.CreateDirectory(temp.Combine("my-model")).FullName;
        File.Copy(Path.Combine(source, "model.safetensors"), Path.Combine(renamed, "model.safetensors"));
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(renamed, "config.json"));
        var (weights, config) = Identify(renamed);

        var published = PublishedLlamaBench.Find(weights, config);

        Assert.NotNull(published);
        Assert.Equal("weights fingerprint", published.MatchedBy);
        Assert.Equal(2948, published.For(1)!.Prefill(512));
        Assert.Equal(1621, published.For(2)!.Tg128);
        Assert.Null(published.For(1)!.Prefill(256));
        Assert.Null(published.For(4));
    }

    [SkippableFact]
    public void A_folder_named_tiny_pydocs_with_other_weights_gets_none()
    {
        // Same config (shape) as tiny-pydocs, other weights, and the name the old match went by.
        using var temp = new TempDirectory();
        var impostor = Directory.CreateDirectory(temp.Combine("tiny-pydocs")).FullName;
        File.Copy(Path.Combine(SharedModels.Path("zoo/mistral"), "model.safetensors"), Path.Combine(impostor, "model.safetensors"));
        File.Copy(Path.Combine(SharedModels.Path("tiny-pydocs"), "config.json"), Path.Combine(impostor, "config.json"));
        var (weights, config) = Identify(impostor);

        Assert.Null(PublishedLlamaBench.Find(weights, config));
    }

    [Fact]
    public void The_smollm2_135m_shape_is_matched_by_shape_and_a_near_miss_is_not()
    {
        var shape = ModelShape.Get("smollm2-135m");
        var config = Parse(SyntheticModelWriter.CreateConfigJson(shape, new SyntheticModelOptions()));

        var published = PublishedLlamaBench.Find(new string('1', 64), config);

        Assert.NotNull(published);
        Assert.Equal("shape", published.MatchedBy);
        Assert.Equal(234, published.For(1)!.Prefill(512));
        Assert.Null(PublishedLlamaBench.Find(new string('1', 64), config with { LayerCount = 29 }));
    }

    private static ModelConfig Parse(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        return ModelConfig.Parse(doc.RootElement, "synthetic config");
    }
}
