using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.CacheGen;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tests.Codecs.CacheGen;

public sealed class CacheGenCodecTests
{
    private const string Model = "1111111111111111111111111111111111111111111111111111111111111111";

    public static TheoryData<int> Levels => [1, 2, 3];

    /// <summary>KV-like values: a few outlier channels, a channel bias, per-token magnitude changes.</summary>
    internal static CachedKv Entry(int seed, int layers = 6, int heads = 2, int tokens = 37, int headDim = 16, string model = Model)
    {
        var random = new Random(seed);
        var n = layers * heads * tokens * headDim;
        var keys = new Half[n];
        var values = new Half[n];
        for (var i = 0; i < n; i++)
        {
            var channel = i % headDim;
            var token = i / headDim % tokens;
            var outlier = channel % 7 == 3 ? 12.0 : 1.0;
            var tokenGain = 0.5 + (token % 5 * 0.3);
            keys[i] = (Half)((Normal(random) * outlier * tokenGain) + (channel % 4 == 1 ? 2.0 : 0.0));
            values[i] = (Half)(Normal(random) * tokenGain * 0.3);
        }

        var ids = Enumerable.Range(0, tokens).ToArray();
        return new CachedKv(new CacheKey(CacheEntryKind.Chunk, new string('a', 64), "sink:bos"), model, Model, ids, layers, heads, headDim, keys, values);
    }

    [Theory]
    [MemberData(nameof(Levels))]
    public void EveryElementIsWithinTheBoundItsLevelStates(int level)
    {
        var entry = Entry(level);
        var shape = new KvEntryShape(entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.TokenCount);
        var codec = KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(level), shape);
        var parameters = CacheGenParameters.ForLevel(level, entry.LayerCount);
        var written = new byte[codec.ParametersLength];
        codec.WriteParameters(written);
        var decoder = KvCodecFactory.ForDecoding(KvCodecSpec.CacheGen(level), written, shape);
        foreach (var kind in new[] { KvSectionKind.Keys, KvSectionKind.Values })
        {
            for (var layer = 0; layer < entry.LayerCount; layer++)
            {
                var section = shape.Section(layer, kind);
                var source = (kind == KvSectionKind.Keys ? entry.Keys : entry.Values).Slice(layer * entry.LayerStride, entry.LayerStride);
                var decoded = RoundTrip(codec, decoder, source, section);
                var levels = parameters.Levels(layer, kind);
                for (var h = 0; h < section.Heads; h++)
                {
                    for (var t = 0; t < section.Tokens; t++)
                    {
                        var row = source.Slice(((h * section.Tokens) + t) * section.Width, section.Width);
                        var maxAbs = MaxAbsOfToken(source, section, t);
                        // The scale is the fp16 at or above the max-abs (relative step 2^-10), the result is rounded to fp16.
                        var bound = CacheGenQuantizer.ErrorBound(maxAbs * (1 + (1f / 1024)), levels);
                        for (var d = 0; d < section.Width; d++)
                        {
                            var x = (float)row[d];
                            var y = (float)decoded[(((h * section.Tokens) + t) * section.Width) + d];
                            Assert.True(MathF.Abs(x - y) <= bound + (MathF.Abs(x) / 1024) + 1e-7f, $"layer {layer} {kind} head {h} token {t} dim {d}: {x} decoded as {y}, bound {bound}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void LevelsAreDerivedFromTheLayerCountAndShrinkWithTheLevel()
    {
        var deep = CacheGenParameters.ForLevel(2, 32);
        Assert.Equal(32, deep.KeyLevels.Length);
        Assert.Equal(32, deep.ValueLevels.Length);
        Assert.True(deep.KeyLevels[0] >= deep.KeyLevels[31] && deep.ValueLevels[0] >= deep.ValueLevels[31]);
        Assert.True(deep.KeyLevels[5] > deep.ValueLevels[5]);
        var one = CacheGenParameters.ForLevel(2, 1);
        Assert.Single(one.KeyLevels);
        for (var l = 1; l < 3; l++)
        {
            var finer = CacheGenParameters.ForLevel(l, 12);
            var coarser = CacheGenParameters.ForLevel(l + 1, 12);
            for (var layer = 0; layer < 12; layer++)
            {
                Assert.True(finer.KeyLevels[layer] >= coarser.KeyLevels[layer]);
                Assert.True(finer.ValueLevels[layer] >= coarser.ValueLevels[layer]);
            }
        }
    }

    [Fact]
    public void ParametersRoundTripAndInvalidOnesAreRefused()
    {
        var parameters = CacheGenParameters.ForLevel(1, 6);
        var bytes = new byte[parameters.Length];
        parameters.Write(bytes);
        var read = CacheGenParameters.Read(bytes, 1, 6);
        Assert.True(read.SameQuantization(parameters));
        Assert.Throws<KvCodecException>(() => CacheGenParameters.Read(bytes, 1, 7));
        Assert.Throws<KvCodecException>(() => CacheGenParameters.Read(bytes.AsSpan(0, bytes.Length - 1), 1, 6));
        Assert.Throws<KvCodecException>(() => CacheGenParameters.Read([.. bytes, 0], 1, 6));
        foreach (var (index, value) in new[] { (0, (byte)9), (1, (byte)2), (3, (byte)5), (6, (byte)0), (6, (byte)200) })
        {
            var bad = (byte[])bytes.Clone();
            bad[index] = value;
            Assert.Throws<KvCodecException>(() => CacheGenParameters.Read(bad, 1, 6));
        }
    }

    [Fact]
    public void CorruptPayloadsFailWithKvCodecException()
    {
        var entry = Entry(5);
        var shape = new KvEntryShape(entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.TokenCount);
        var codec = KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(2), shape);
        var section = shape.Section(1, KvSectionKind.Keys);
        var payload = new byte[codec.MaxEncodedLength(section)];
        var length = codec.Encode(entry.Keys.Slice(entry.LayerStride, entry.LayerStride), section, payload).BytesWritten;
        var good = payload.AsSpan(0, length).ToArray();
        var output = new Half[section.ValueCount];
        for (var cut = 0; cut < good.Length; cut += 7)
            Assert.Throws<KvCodecException>(() => codec.Decode(good.AsSpan(0, cut), section, output));
        Assert.Throws<KvCodecException>(() => codec.Decode([.. good, 1], section, output));

        var nanScale = (byte[])good.Clone();
        nanScale[0] = 0xFF;
        nanScale[1] = 0x7F;
        Assert.Throws<KvCodecException>(() => codec.Decode(nanScale, section, output));
        var badStatistics = (byte[])good.Clone();
        badStatistics[2 * section.Tokens] = 250;
        Assert.Throws<KvCodecException>(() => codec.Decode(badStatistics, section, output));

        var random = new Random(3);
        for (var i = 0; i < 3000; i++)
        {
            var mutated = (byte[])good.Clone();
            mutated[random.Next(mutated.Length)] ^= (byte)(1 << random.Next(8));
            try
            {
                codec.Decode(mutated, section, output);
            }
            catch (KvCodecException)
            {
            }
        }

        Assert.Throws<KvCodecException>(() => codec.Decode(good, shape.Section(6, KvSectionKind.Keys), output));
        Assert.Throws<KvCodecException>(() => codec.Decode(good, new KvSectionShape(0, KvSectionKind.HiddenStates, 1, 37, 32), new Half[37 * 32]));
    }

    [Fact]
    public void AProfileRemovesTheStatisticsFromTheSectionsAndSurvivesSerialization()
    {
        var calibration = Enumerable.Range(20, 4).Select(s => Entry(s)).ToList();
        var profile = CacheGenProfile.Build(calibration, 2);
        var profiles = new KvCodecProfiles();
        profiles.Add(profile);
        var entry = Entry(99);
        var shape = new KvEntryShape(entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.TokenCount);
        var withProfile = KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(2), shape, Model, profiles);
        var inline = KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(2), shape, Model);
        var parameters = new byte[withProfile.ParametersLength];
        withProfile.WriteParameters(parameters);
        Assert.Equal(CacheGenParameters.ProfileIdLength, withProfile.ParametersLength - inline.ParametersLength);

        // The profile read back from its bytes has the same id and decodes what the original encoded.
        var reread = CacheGenProfile.Read(profile.ToMemory().Span);
        Assert.Equal(profile.Id, reread.Id);
        var readerProfiles = new KvCodecProfiles();
        readerProfiles.Add(reread);
        var decoder = KvCodecFactory.ForDecoding(KvCodecSpec.CacheGen(2), parameters, shape, readerProfiles);
        var inlineParameters = new byte[inline.ParametersLength];
        inline.WriteParameters(inlineParameters);
        var inlineDecoder = KvCodecFactory.ForDecoding(KvCodecSpec.CacheGen(2), inlineParameters, shape);
        for (var layer = 0; layer < entry.LayerCount; layer++)
        {
            var section = shape.Section(layer, KvSectionKind.Values);
            var source = entry.Values.Slice(layer * entry.LayerStride, entry.LayerStride);
            var a = RoundTrip(withProfile, decoder, source, section, out var profiled);
            var b = RoundTrip(inline, inlineDecoder, source, section, out var carried);
            // Same quantization, so the same values; the inline sections carry 2 bytes of statistics per channel.
            Assert.Equal(a, b);
            Assert.Equal(0, profiled.StatisticsBytes);
            Assert.Equal(2 * section.Channels, carried.StatisticsBytes);
        }

        Assert.Throws<KvCodecException>(() => KvCodecFactory.ForDecoding(KvCodecSpec.CacheGen(2), parameters, shape));
        Assert.Throws<KvCodecException>(() => KvCodecFactory.ForDecoding(KvCodecSpec.CacheGen(2), parameters, shape, new KvCodecProfiles()));
    }

    [Fact]
    public void AProfileOfAnotherModelOrLevelIsNotUsed()
    {
        var profile = CacheGenProfile.Build([Entry(1)], 2);
        var profiles = new KvCodecProfiles();
        profiles.Add(profile);
        var shape = new KvEntryShape(6, 2, 16, 37);
        Assert.Equal(CacheGenParameters.ForLevel(2, 6).Length, KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(2), shape, new string('2', 64), profiles).ParametersLength);
        Assert.Equal(CacheGenParameters.ForLevel(1, 6).Length, KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(1), shape, Model, profiles).ParametersLength);
        Assert.Equal(CacheGenParameters.ForLevel(2, 5).Length, KvCodecFactory.ForEncoding(KvCodecSpec.CacheGen(2), new KvEntryShape(5, 2, 16, 37), Model, profiles).ParametersLength);
    }

    [Fact]
    public void CorruptProfilesFailWithKvCodecException()
    {
        var bytes = CacheGenProfile.Build([Entry(2, layers: 2, heads: 1, headDim: 8)], 3).ToMemory().ToArray();
        for (var cut = 0; cut < bytes.Length; cut += 5)
            Assert.Throws<KvCodecException>(() => CacheGenProfile.Read(bytes.AsSpan(0, cut)));
        var random = new Random(8);
        for (var i = 0; i < 500; i++)
        {
            var mutated = (byte[])bytes.Clone();
            mutated[random.Next(mutated.Length)] ^= (byte)(1 << random.Next(8));
            Assert.Throws<KvCodecException>(() => CacheGenProfile.Read(mutated));
        }
    }

    private static float MaxAbsOfToken(ReadOnlySpan<Half> section, KvSectionShape shape, int token)
    {
        var m = 0f;
        for (var h = 0; h < shape.Heads; h++)
        {
            foreach (var v in section.Slice(((h * shape.Tokens) + token) * shape.Width, shape.Width))
                m = MathF.Max(m, MathF.Abs((float)v));
        }

        return m;
    }

    private static Half[] RoundTrip(KvSectionCodec encoder, KvSectionCodec decoder, ReadOnlySpan<Half> source, KvSectionShape shape) =>
        RoundTrip(encoder, decoder, source, shape, out _);

    private static Half[] RoundTrip(KvSectionCodec encoder, KvSectionCodec decoder, ReadOnlySpan<Half> source, KvSectionShape shape, out KvSectionEncoding encoding)
    {
        var payload = new byte[encoder.MaxEncodedLength(shape)];
        encoding = encoder.Encode(source, shape, payload);
        var decoded = new Half[shape.ValueCount];
        decoder.Decode(payload.AsSpan(0, encoding.BytesWritten), shape, decoded);
        return decoded;
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
