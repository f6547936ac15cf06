using System.Runtime.InteropServices;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;
using KvFusion.Diagnostics.Synthetic;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Diagnostics.Tests.Synthetic;

public sealed class SyntheticModelWriterTests
{
    public static TheoryData<string> KnownNames => [.. ModelShape.Known.Select(s => s.Name)];

    /// <summary>A tiny model of each family (real shapes are far too large to write in a test).</summary>
    private static ModelShape Tiny(string knownName) => ModelShape.Get(knownName) with
    {
        Name = "tiny-" + knownName,
        VocabSize = 300,
        HiddenSize = 64,
        IntermediateSize = 96,
        LayerCount = 2,
        HeadCount = 4,
        KvHeadCount = 2,
        HeadDim = knownName.StartsWith("qwen3", StringComparison.Ordinal) ? 32 : 16,
        MaxPositionEmbeddings = 512,
    };

    [Theory]
    [MemberData(nameof(KnownNames))]
    public void Config_of_every_known_shape_parses_back_to_the_same_shape(string name)
    {
        using var dir = new TempDirectory();
        var shape = ModelShape.Get(name);
        SyntheticModelWriter.WriteConfig(shape, dir.Path, new SyntheticModelOptions { DType = TensorDType.BF16 });

        var config = ModelConfig.Load(dir.Path);
        AssertMatches(shape, config);
        Assert.Equal("bfloat16", config.DeclaredDType);
    }

    [Fact]
    public void Known_shapes_have_their_published_parameter_counts()
    {
        Assert.Equal(134_515_008, ModelShape.Get("smollm2-135m").ParameterCount);
        Assert.Equal(494_032_768, ModelShape.Get("qwen2.5-0.5b").ParameterCount);
        Assert.Equal(596_049_920, ModelShape.Get("qwen3-0.6b").ParameterCount);
        Assert.Equal(1_235_814_400, ModelShape.Get("llama-3.2-1b").ParameterCount);
        Assert.Equal(8_030_261_248, ModelShape.Get("llama-3.1-8b").ParameterCount);
        Assert.Equal(7_241_732_096, ModelShape.Get("mistral-7b").ParameterCount);
    }

    [Fact]
    public void Get_ignores_case_and_lists_known_names_for_an_unknown_one()
    {
        Assert.Same(ModelShape.Get("llama-3.2-1b"), ModelShape.Get("LLaMA-3.2-1B"));
        var e = Assert.Throws<ArgumentException>(() => ModelShape.Get("gpt-5"));
        Assert.Contains("gpt-5", e.Message, StringComparison.Ordinal);
        foreach (var s in ModelShape.Known)
        {
            Assert.Contains(s.Name, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("smollm2-135m", TensorDType.F16)]
    [InlineData("llama-3.1-8b", TensorDType.BF16)]
    [InlineData("qwen2.5-0.5b", TensorDType.F16)]
    [InlineData("qwen3-0.6b", TensorDType.F32)]
    [InlineData("mistral-7b", TensorDType.F16)]
    public void Writes_a_complete_model_directory_that_loads(string family, TensorDType dtype)
    {
        using var dir = new TempDirectory();
        var shape = Tiny(family);
        var outDir = dir.Combine("model");
        var fractions = new List<double>();
        SyntheticModelWriter.Write(shape, outDir, new SyntheticModelOptions { DType = dtype, Seed = 7 }, new SyncProgress(fractions));

        Assert.Equal(
            ["README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"],
            Directory.GetFiles(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["model"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        Assert.Equal(1.0, fractions[^1]);
        Assert.Contains("random weights", File.ReadAllText(Path.Combine(outDir, "README.md")), StringComparison.Ordinal);

        var config = ModelConfig.Load(outDir);
        AssertMatches(shape, config);

        using var checkpoint = SafeTensorsCheckpoint.Open(outDir);
        using var file = SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        var expected = shape.EnumerateTensors();
        Assert.Equal(expected.Select(t => t.Name).Order(StringComparer.Ordinal), file.TensorNames.Order(StringComparer.Ordinal));
        Assert.Equal(shape.TieWordEmbeddings, !file.Contains("lm_head.weight"));
        Assert.Equal(family.StartsWith("qwen2", StringComparison.Ordinal), file.Contains("model.layers.0.self_attn.q_proj.bias"));
        Assert.Equal(family.StartsWith("qwen3", StringComparison.Ordinal), file.Contains("model.layers.1.self_attn.k_norm.weight"));
        foreach (var t in expected)
        {
            var st = file.Get(t.Name);
            Assert.Equal(dtype, st.DType);
            Assert.Equal(t.Shape, st.Shape);
            var values = ToFloats(st);
            if (t.Role == ModelTensorRole.Norm)
            {
                Assert.All(values, v => Assert.Equal(1f, v));
            }
            else
            {
                Assert.All(values, v => Assert.True(float.IsFinite(v) && Math.Abs(v) < 0.2f));
                Assert.Contains(values, v => v != 0);
            }
        }

        // The embedding is the largest tensor: its statistics should be those of normal(0, 0.02).
        var (mean, std) = Stats(ToFloats(file.Get("model.embed_tokens.weight")));
        Assert.InRange(mean, -0.001, 0.001);
        Assert.InRange(std, 0.019, 0.021);

        using var tokenizer = ModelTokenizer.Load(Path.Combine(outDir, "tokenizer.json"));
        Assert.True(tokenizer.VocabSize <= shape.VocabSize);
    }

    [Fact]
    public void Same_seed_gives_identical_bytes_and_another_seed_different_ones()
    {
        using var dir = new TempDirectory();
        var shape = Tiny("llama-3.2-1b");
        SyntheticModelWriter.Write(shape, dir.Combine("a"), new SyntheticModelOptions { Seed = 1 });
        SyntheticModelWriter.Write(shape, dir.Combine("b"), new SyntheticModelOptions { Seed = 1 });
        SyntheticModelWriter.Write(shape, dir.Combine("c"), new SyntheticModelOptions { Seed = 2 });

        var a = File.ReadAllBytes(Path.Combine(dir.Combine("a"), "model.safetensors"));
        var b = File.ReadAllBytes(Path.Combine(dir.Combine("b"), "model.safetensors"));
        var c = File.ReadAllBytes(Path.Combine(dir.Combine("c"), "model.safetensors"));
        Assert.Equal(a, b);
        Assert.Equal(a.Length, c.Length);
        Assert.NotEqual(a, c);

        // Tensors are keyed by name: two projections of the same shape differ.
        using var file = SafeTensorsFile.Open(Path.Combine(dir.Combine("a"), "model.safetensors"));
        Assert.NotEqual(file.Get("model.layers.0.self_attn.k_proj.weight").Bytes.ToArray(), file.Get("model.layers.0.self_attn.v_proj.weight").Bytes.ToArray());
    }

    [Fact]
    public void Any_range_of_a_tensor_is_generated_independently_of_the_blocks_that_produce_it()
    {
        var key = SyntheticWeights.TensorKey(42, "model.layers.3.mlp.up_proj.weight");
        foreach (var dtype in new[] { TensorDType.F16, TensorDType.BF16, TensorDType.F32 })
        {
            var size = dtype.SizeInBytes();
            var whole = new byte[10_000 * size];
            SyntheticWeights.FillNormal(whole, 0, dtype, key, 0.02f);
            foreach (var (start, count) in new[] { (0, 1), (3, 17), (15, 4200), (4096, 5000), (9_999, 1) })
            {
                var part = new byte[count * size];
                SyntheticWeights.FillNormal(part, start, dtype, key, 0.02f);
                Assert.Equal(whole.AsSpan(start * size, count * size).ToArray(), part);
            }
        }

        // Past 2^32 pairs the counter's high bits move into the key; ranges across that point still agree.
        const long Far = 1L << 33;
        var span = new byte[64 * 4];
        SyntheticWeights.FillNormal(span, Far - 32, TensorDType.F32, key, 0.02f);
        var tail = new byte[32 * 4];
        SyntheticWeights.FillNormal(tail, Far, TensorDType.F32, key, 0.02f);
        Assert.Equal(span.AsSpan(32 * 4).ToArray(), tail);
        Assert.NotEqual(span.AsSpan(0, 32 * 4).ToArray(), tail);
    }

    [Fact]
    public void Generated_values_follow_a_normal_distribution()
    {
        const int N = 1 << 20;
        var values = new float[N];
        SyntheticWeights.FillNormal(MemoryMarshal.AsBytes(values.AsSpan()), 0, TensorDType.F32, SyntheticWeights.TensorKey(0, "x"), 1f);
        var (mean, std) = Stats(values);
        Assert.InRange(mean, -0.005, 0.005);
        Assert.InRange(std, 0.995, 1.005);
        var within1 = values.Count(v => Math.Abs(v) < 1) / (double)N;
        var beyond3 = values.Count(v => Math.Abs(v) > 3) / (double)N;
        Assert.InRange(within1, 0.6827 - 0.003, 0.6827 + 0.003);
        Assert.InRange(beyond3, 0.0027 - 0.0004, 0.0027 + 0.0004);
        Assert.True(values.Distinct().Count() > N * 0.99);
    }

    [Fact]
    public void Half_and_bfloat16_conversions_round_to_nearest_even()
    {
        var rng = new Random(3);
        var inputs = new List<float>
        {
            0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 1e6f, -1e6f, float.PositiveInfinity, float.NegativeInfinity,
            6.1035156e-05f, 6.0975552e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 1e-9f, -3e-6f,
            1.0009765625f + (0.0009765625f / 2), 1f + (0.0009765625f / 2), 0.02f, -0.0123456f,
        };
        while (inputs.Count % 16 != 0 || inputs.Count < 100_000)
        {
            var bits = (uint)rng.NextInt64(0, 1L << 32);
            var f = BitConverter.UInt32BitsToSingle(bits);
            inputs.Add(float.IsNaN(f) ? 0.5f : f);
        }

        var src = inputs.ToArray();
        var half = new ushort[src.Length];
        var bf16 = new ushort[src.Length];
        SyntheticWeights.ToHalf(src, half);
        SyntheticWeights.ToBFloat16(src, bf16);
        for (var i = 0; i < src.Length; i++)
        {
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)src[i]), half[i]);
            if (float.IsFinite(src[i]))
            {
                // Reference: round to nearest even on the dropped 16 bits, in 64-bit arithmetic.
                var b = BitConverter.SingleToUInt32Bits(src[i]);
                var rest = b & 0xFFFF;
                var up = rest > 0x8000 || (rest == 0x8000 && (b & 0x10000) != 0);
                Assert.Equal((ushort)((b >> 16) + (up ? 1u : 0u)), bf16[i]);
            }
        }
    }

    [Fact]
    public void A_non_empty_output_directory_is_refused_unless_overwrite_is_set()
    {
        using var dir = new TempDirectory();
        var shape = Tiny("smollm2-135m");
        var outDir = dir.Combine("m");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "mine");

        var e = Assert.Throws<IOException>(() => SyntheticModelWriter.Write(shape, outDir, new SyntheticModelOptions()));
        Assert.Contains("not empty", e.Message, StringComparison.Ordinal);

        // Not a model directory: refused even with overwrite, and left untouched.
        Assert.Throws<IOException>(() => SyntheticModelWriter.Write(shape, outDir, new SyntheticModelOptions { Overwrite = true }));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(outDir, "notes.txt")));
        Assert.Equal(["m"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));

        // An empty directory is fine; a model directory can be replaced with overwrite.
        var empty = dir.Combine("empty");
        Directory.CreateDirectory(empty);
        SyntheticModelWriter.Write(shape, empty, new SyntheticModelOptions { Seed = 1 });
        Assert.Throws<IOException>(() => SyntheticModelWriter.Write(shape, empty, new SyntheticModelOptions { Seed = 2 }));
        SyntheticModelWriter.Write(shape, empty, new SyntheticModelOptions { Seed = 2, Overwrite = true });
        Assert.Contains("seed / std | 2 /", File.ReadAllText(Path.Combine(empty, "README.md")), StringComparison.Ordinal);
        Assert.Equal(["empty", "m"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_cancelled_write_leaves_nothing_behind()
    {
        using var dir = new TempDirectory();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            SyntheticModelWriter.Write(Tiny("qwen3-0.6b"), dir.Combine("m"), new SyntheticModelOptions(), null, cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void A_vocabulary_smaller_than_the_tokenizer_is_rejected()
    {
        using var dir = new TempDirectory();
        var shape = Tiny("smollm2-135m") with { VocabSize = 200 };
        Assert.Throws<ArgumentException>(() => SyntheticModelWriter.Write(shape, dir.Combine("m"), new SyntheticModelOptions()));
    }

    private static void AssertMatches(ModelShape shape, ModelConfig config)
    {
        Assert.Equal(shape.Architecture, config.Architecture);
        Assert.Equal(shape.ArchitectureName, config.ArchitectureName);
        Assert.Equal(shape.VocabSize, config.VocabSize);
        Assert.Equal(shape.HiddenSize, config.HiddenSize);
        Assert.Equal(shape.IntermediateSize, config.IntermediateSize);
        Assert.Equal(shape.LayerCount, config.LayerCount);
        Assert.Equal(shape.HeadCount, config.HeadCount);
        Assert.Equal(shape.KvHeadCount, config.KvHeadCount);
        Assert.Equal(shape.HeadDim, config.HeadDim);
        Assert.Equal(shape.MaxPositionEmbeddings, config.MaxPositionEmbeddings);
        Assert.Equal((float)shape.RmsNormEps, config.RmsNormEps);
        Assert.Equal(shape.TieWordEmbeddings, config.TieWordEmbeddings);
        Assert.Equal(shape.Rope, config.Rope);
        Assert.Equal(shape.Architecture == ModelArchitecture.Qwen2, config.QkvBias);
        Assert.Equal(shape.Architecture == ModelArchitecture.Qwen3, config.QkNorm);
        Assert.False(config.OutputBias);
        Assert.False(config.MlpBias);
        Assert.Equal(ByteLevelTokenizerWriter.EndOfTextId, config.BosTokenId);
        Assert.Equal([ByteLevelTokenizerWriter.EndOfTextId], config.EosTokenIds);
    }

    private static float[] ToFloats(SafeTensor t)
    {
        var bytes = t.Bytes;
        return t.DType switch
        {
            TensorDType.F32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            TensorDType.F16 => [.. MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h)],
            TensorDType.BF16 => [.. MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(u => BitConverter.UInt32BitsToSingle((uint)u << 16))],
            _ => throw new InvalidOperationException(),
        };
    }

    private static (double Mean, double Std) Stats(float[] values)
    {
        var mean = values.Average(v => (double)v);
        var variance = values.Average(v => ((double)v - mean) * ((double)v - mean));
        return (mean, Math.Sqrt(variance));
    }

    private sealed class SyncProgress(List<double> values) : IProgress<double>
    {
        public void Report(double value) => values.Add(value);
    }
}
