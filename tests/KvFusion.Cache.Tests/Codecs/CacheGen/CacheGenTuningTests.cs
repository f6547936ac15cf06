using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Container;
using KvFusion.Cache.Tests.Container;

namespace KvFusion.Cache.Tests.Codecs.CacheGen;

public sealed class CacheGenTuningTests
{
    [Theory]
    [InlineData("k8v3")]
    [InlineData("k16v4:kch")]
    [InlineData("k4v3:early8")]
    [InlineData("k2v2:early6:kch:vch")]
    public void Short_names_round_trip(string name) => Assert.Equal(name, CacheGenTuning.Parse(name).ToString());

    [Theory]
    [InlineData("")]
    [InlineData("k8")]
    [InlineData("k0v3")]
    [InlineData("k128v3")]
    [InlineData("k8v3:vch:kch")]
    [InlineData("K8V3")]
    [InlineData("k8v3:early")]
    public void Other_text_is_a_format_error(string text) => Assert.Throws<FormatException>(() => CacheGenTuning.Parse(text));

    [Fact]
    public void A_tuned_container_records_its_quantization_and_any_reader_decodes_it()
    {
        var entry = ContainerTestData.Entry(layers: 3, tokens: 12);
        var tuning = CacheGenTuning.Parse("k2v1:early16:vch");

        var blob = KvContainerWriter.ToArray(entry, KvCodecSpec.CacheGen(1), KvContainerWriteOptions.Default with { CacheGenTuning = tuning });
        var plain = KvContainerWriter.ToArray(entry, KvCodecSpec.CacheGen(1));

        // Reading needs no tuning: the levels and scalings are in the header.
        var decoded = KvContainerReader.Read(blob);
        var parameters = CacheGenParameters.Read(KvContainerReader.Inspect(blob).Header.CodecParameters.Span, 1, entry.LayerCount);
        Assert.Equal([16, 2, 2], parameters.KeyLevels);
        Assert.Equal([1, 1, 1], parameters.ValueLevels);
        Assert.Equal(CacheGenScaling.PerToken, parameters.KeyScaling);
        Assert.Equal(CacheGenScaling.PerChannel, parameters.ValueScaling);
        Assert.Equal(entry.Keys.Length, decoded.Keys.Length);
        Assert.NotEqual(plain.Length, blob.Length);
    }
}
