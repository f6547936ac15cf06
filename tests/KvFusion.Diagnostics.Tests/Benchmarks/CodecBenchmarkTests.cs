using System.Text.Json;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Evaluation;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Diagnostics.Synthetic;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Transformer;

namespace KvFusion.Diagnostics.Tests.Benchmarks;

public sealed class CodecBenchmarkTests
{
    /// <summary>Names other tools read from <c>bench codec --json</c> (issue 9).</summary>
    private static readonly string[] CodecFields =
    [
        "codec", "ratio_to_fp16", "bits_per_value", "statistics_share", "encode_mb_s_per_core", "decode_mb_s_per_core",
        "blend_mean_kl", "reuse_mean_kl", "blend_top1_agreement", "reuse_top1_agreement", "bytes", "fp16_bytes", "statistics_bytes",
    ];

    private static readonly string[] BaselineFields = ["blend_mean_kl", "reuse_mean_kl", "blend_top1_agreement", "reuse_top1_agreement"];

    [Fact]
    public async Task A_run_on_a_tiny_synthetic_model_gives_sane_numbers_and_raw_keeps_the_uncompressed_quality()
    {
        using var dir = new TempDirectory();
        using var backend = new CpuBackend(1);
        using var model = TinyModel(dir, backend);
        FusionCase[] cases =
        [
            new(null, ["def parse(text): return json.loads(text) # first chunk", "class Reader: reads lines from a file one by one"], "The reader", " reads lines"),
            new(null, ["with open(path) as f: data = f.read() # context", "def parse(text): return json.loads(text) # first chunk"], "with open", "(path) as f"),
        ];
        var lz4 = KvCodecSpec.Lz4;

        var report = await CodecBenchmark.RunAsync(model, cases, new CodecBenchmarkOptions { Codecs = [KvCodecSpec.Raw, lz4], Repetitions = 2, GreedyTokens = 4 });

        Assert.Equal(2, report.Cases);
        Assert.Equal(3, report.Entries); // one chunk appears in both cases
        Assert.Equal(2, report.Codecs.Count + report.Skipped.Count);
        var raw = Assert.Single(report.Codecs, r => r.Codec == KvCodecSpec.Raw);
        Assert.True(raw.BitExact);
        Assert.Equal(report.Fp16Bytes, raw.Fp16Bytes);
        Assert.Equal(raw.Fp16Bytes, raw.PayloadBytes);
        Assert.InRange(raw.BitsPerValue, 16.0, 20.0);
        Assert.InRange(raw.RatioToFp16, 0.8, 1.0);
        Assert.Equal(0, raw.StatisticsShare);
        Assert.True(raw.EncodeMbPerSecondPerCore > 0 && double.IsFinite(raw.EncodeMbPerSecondPerCore));
        Assert.True(raw.DecodeMbPerSecondPerCore > 0 && double.IsFinite(raw.DecodeMbPerSecondPerCore));
        Assert.Equal(report.BaselineReuse, raw.Reuse);
        Assert.Equal(report.BaselineBlend, raw.Blend);
        foreach (var q in new[] { report.BaselineReuse, report.BaselineBlend })
        {
            Assert.True(q.MeanKl >= 0 && double.IsFinite(q.MeanKl));
            Assert.InRange(q.Top1Agreement, 0, 1);
            Assert.InRange(q.GreedyMatch, 0, 1);
        }

        // lz4 is measured once it is built (then it is lossless too), and named as skipped with the reason until then.
        if (report.Codecs.SingleOrDefault(r => r.Codec == lz4) is { } l)
        {
            Assert.True(l.BitExact);
            Assert.Equal(report.BaselineBlend, l.Blend);
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(Assert.Single(report.Skipped).Reason));
        }
    }

    [Fact]
    public void The_json_has_the_names_other_tools_read_and_null_for_what_is_not_finite()
    {
        var quality = new CodecFusionQuality(0.12, 0.9, 0.5);
        var report = new CodecBenchmarkReport
        {
            Cases = 1,
            Entries = 2,
            Fp16Bytes = 4000,
            Repetitions = 3,
            ReuseMode = "reuse",
            BlendMode = "blend:0.15",
            BaselineReuse = quality,
            BaselineBlend = quality,
            Codecs =
            [
                new CodecBenchmarkRow
                {
                    Codec = KvCodecSpec.CacheGen(2), StatisticsSource = "profile", ProfileBytes = 1234, Entries = 2, Values = 2000, Fp16Bytes = 4000, TotalBytes = 500, HeaderBytes = 40, PayloadBytes = 440,
                    StatisticsBytes = 50, SectionFramingBytes = 20, BitExact = false, EncodeMbPerSecondPerCore = 100, DecodeMbPerSecondPerCore = double.NaN,
                    Reuse = quality, Blend = quality,
                },
            ],
            Skipped = [new CodecBenchmarkSkip(KvCodecSpec.Fp8, "being built")],
        };
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            CodecBenchmark.WriteJson(writer, report);
            writer.WriteEndObject();
        }

        using var doc = JsonDocument.Parse(buffer.ToArray());
        var codec = Assert.Single(doc.RootElement.GetProperty("codecs").EnumerateArray().ToList());
        foreach (var name in CodecFields)
        {
            Assert.True(codec.TryGetProperty(name, out _), name);
        }

        Assert.Equal("cachegen:2", codec.GetProperty("codec").GetString());
        Assert.Equal(8.0, codec.GetProperty("ratio_to_fp16").GetDouble());
        Assert.Equal(2.0, codec.GetProperty("bits_per_value").GetDouble());
        Assert.Equal(0.1, codec.GetProperty("statistics_share").GetDouble());
        Assert.Equal(JsonValueKind.Null, codec.GetProperty("decode_mb_s_per_core").ValueKind);
        Assert.Equal("profile", codec.GetProperty("statistics_source").GetString());
        Assert.Equal(1234, codec.GetProperty("profile_bytes").GetInt64());
        var baseline = doc.RootElement.GetProperty("baseline");
        foreach (var name in BaselineFields)
        {
            Assert.Equal(JsonValueKind.Number, baseline.GetProperty(name).ValueKind);
        }

        Assert.Equal("fp8", Assert.Single(doc.RootElement.GetProperty("skipped").EnumerateArray().ToList()).GetProperty("codec").GetString());
    }

    [Fact]
    public async Task Calibration_cases_add_a_profile_row_per_cachegen_level_calibrated_on_other_chunks()
    {
        using var dir = new TempDirectory();
        using var backend = new CpuBackend(1);
        using var model = TinyModel(dir, backend);
        FusionCase[] cases = [new(null, ["def parse(text): return json.loads(text) # first chunk", "class Reader: reads lines from a file"], "The reader", " reads lines")];
        FusionCase[] calibration =
        [
            new(null, ["import os, sys # a calibration chunk", "class Reader: reads lines from a file", "for line in f: print(line.strip())"], "print", "(line)"),
        ];

        var report = await CodecBenchmark.RunAsync(model, cases, new CodecBenchmarkOptions { Codecs = [KvCodecSpec.CacheGen(2)], Repetitions = 1, GreedyTokens = 2, CalibrationCases = calibration });

        // The chunk the calibration case shares with the measured case is left out of the calibration.
        Assert.Equal(2, report.CalibrationEntries);
        Assert.Collection(
            report.Codecs,
            inline =>
            {
                Assert.Equal("inline", inline.StatisticsSource);
                Assert.Null(inline.ProfileBytes);
                Assert.True(inline.StatisticsBytes > 0);
                Assert.Equal("cachegen:2", inline.Label);
            },
            profiled =>
            {
                Assert.Equal("profile", profiled.StatisticsSource);
                Assert.True(profiled.ProfileBytes > 0);
                Assert.Equal(0, profiled.StatisticsBytes);
                Assert.Equal("cachegen:2+profile", profiled.Label);
                Assert.True(double.IsFinite(profiled.Blend.MeanKl) && profiled.Blend.MeanKl >= 0);
            });
        Assert.True(report.Codecs[1].TotalBytes < report.Codecs[0].TotalBytes, "a profile row carries no statistics, so its containers are smaller");
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { Codecs = [] }.Validate());
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { Codecs = [new KvCodecSpec(KvCodecKind.Raw, 2)] }.Validate());
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { Repetitions = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { BlendRatio = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { GreedyTokens = -1 }.Validate());
        Assert.Throws<ArgumentException>(() => new CodecBenchmarkOptions { CalibrationCases = null! }.Validate());
    }

    private static TransformerModel TinyModel(TempDirectory dir, CpuBackend backend)
    {
        var shape = ModelShape.Get("llama-3.2-1b") with
        {
            Name = "tiny-codec-bench",
            VocabSize = 300,
            HiddenSize = 64,
            IntermediateSize = 96,
            LayerCount = 2,
            HeadCount = 4,
            KvHeadCount = 2,
            HeadDim = 16,
            MaxPositionEmbeddings = 512,
        };
        SyntheticModelWriter.Write(shape, dir.Combine("model"), new SyntheticModelOptions { Seed = 3 });
        return TransformerModel.Load(dir.Combine("model"), backend);
    }
}
