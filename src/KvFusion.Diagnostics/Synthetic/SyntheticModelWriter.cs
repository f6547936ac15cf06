using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Json;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;
using KvFusion.Engine.Tokenization;

namespace KvFusion.Diagnostics.Synthetic;

/// <summary>Settings of <see cref="SyntheticModelWriter.Write"/>.</summary>
public sealed record SyntheticModelOptions
{
    /// <summary>Element type of the weights: F16 (default), BF16 or F32.</summary>
    public TensorDType DType { get; init; } = TensorDType.F16;

    /// <summary>Seed of the weights; the same seed and shape give byte-identical files on every machine.</summary>
    public ulong Seed { get; init; }

    /// <summary>Standard deviation of the normal weights and biases (transformers' initializer_range).</summary>
    public float Std { get; init; } = 0.02f;

    /// <summary>
    /// Replace an output directory that already holds a model (has a config.json). A non-empty directory without
    /// one is refused even so, so a mistyped path cannot wipe unrelated files.
    /// </summary>
    public bool Overwrite { get; init; }
}

/// <summary>
/// Writes a Hugging Face model directory with deterministic random weights in the shape of a real model
/// (<c>kvfusion model init</c>), so benchmarks can run at real sizes without downloads: config.json,
/// generation_config.json, model.safetensors, a byte-level tokenizer and a README that says what it is.
/// </summary>
public static class SyntheticModelWriter
{
    /// <summary>Name of the weights file.</summary>
    public const string WeightsFileName = SafeTensorsCheckpoint.SingleFileName;

    /// <summary>
    /// Writes the model directory <paramref name="outDir"/>. Everything is written into a hidden staging directory
    /// beside it and renamed into place at the end, so an interrupted run never leaves a partial model.
    /// </summary>
    /// <param name="shape">The architecture to reproduce.</param>
    /// <param name="outDir">The model directory to create; it must not exist or be empty (see
    /// <see cref="SyntheticModelOptions.Overwrite"/>).</param>
    /// <param name="options">Dtype, seed, std, overwrite.</param>
    /// <param name="progress">Receives the fraction of the weights written, 0 to 1.</param>
    /// <param name="cancellationToken">Stops the write; nothing is left behind.</param>
    /// <exception cref="IOException">The output directory exists and is not empty (and may not be replaced).</exception>
    /// <exception cref="ArgumentException">The shape or options are invalid.</exception>
    public static void Write(ModelShape shape, string outDir, SyntheticModelOptions options, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        ArgumentNullException.ThrowIfNull(options);
        Validate(shape, options);

        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var replace = CheckTarget(target, options.Overwrite);
        var parent = Path.GetDirectoryName(target) ?? throw new IOException($"Cannot write a model to the root directory {target}.");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            File.WriteAllBytes(Path.Combine(staging, "config.json"), CreateConfigJson(shape, options));
            File.WriteAllBytes(Path.Combine(staging, "generation_config.json"), CreateGenerationConfigJson());
            ByteLevelTokenizerWriter.Write(staging, shape.MaxPositionEmbeddings);
            File.WriteAllText(Path.Combine(staging, "README.md"), CreateReadme(shape, options));

            var writer = CreateWeightsWriter(shape, options);
            var total = writer.ComputeFileLength();
            var bytesProgress = progress is null ? null : new FractionProgress(progress, total);
            writer.WriteFile(Path.Combine(staging, WeightsFileName), bytesProgress, cancellationToken);

            cancellationToken.ThrowIfCancellationRequested();
            Publish(staging, target, replace);
            progress?.Report(1.0);
        }
        catch
        {
            TryDeleteDirectory(staging);
            throw;
        }
    }

    /// <summary>Writes only config.json for <paramref name="shape"/> into an existing directory (no weights).</summary>
    /// <param name="shape">The architecture.</param>
    /// <param name="directory">An existing directory; config.json is replaced.</param>
    /// <param name="options">Dtype and std are recorded in the config.</param>
    public static void WriteConfig(ModelShape shape, string directory, SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(options);
        Validate(shape, options);
        File.WriteAllBytes(Path.Combine(directory, "config.json"), CreateConfigJson(shape, options));
    }

    /// <summary>
    /// The config.json of a synthetic model: the Hugging Face keys of the shape's family, with BOS and EOS set to
    /// the byte-level tokenizer's <see cref="ByteLevelTokenizerWriter.EndOfTextId"/>.
    /// </summary>
    /// <param name="shape">The architecture.</param>
    /// <param name="options">Dtype (torch_dtype) and std (initializer_range).</param>
    public static byte[] CreateConfigJson(ModelShape shape, SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(options);
        var arch = shape.Architecture;
        const int SpecialId = ByteLevelTokenizerWriter.EndOfTextId;

        // transformers writes keys sorted; collect them, then emit in ordinal order.
        var keys = new SortedDictionary<string, Action<Utf8JsonWriter>>(StringComparer.Ordinal)
        {
            ["architectures"] = w =>
            {
                w.WriteStartArray();
                w.WriteStringValue(shape.ArchitectureName);
                w.WriteEndArray();
            },
            ["attention_dropout"] = w => w.WriteNumberValue(0.0),
            ["bos_token_id"] = w => w.WriteNumberValue(SpecialId),
            ["eos_token_id"] = w => w.WriteNumberValue(SpecialId),
            ["head_dim"] = w => w.WriteNumberValue(shape.HeadDim),
            ["hidden_act"] = w => w.WriteStringValue("silu"),
            ["hidden_size"] = w => w.WriteNumberValue(shape.HiddenSize),
            ["initializer_range"] = w => w.WriteNumberValue(ShortestDouble(options.Std)),
            ["intermediate_size"] = w => w.WriteNumberValue(shape.IntermediateSize),
            ["max_position_embeddings"] = w => w.WriteNumberValue(shape.MaxPositionEmbeddings),
            ["model_type"] = w => w.WriteStringValue(shape.ModelType),
            ["num_attention_heads"] = w => w.WriteNumberValue(shape.HeadCount),
            ["num_hidden_layers"] = w => w.WriteNumberValue(shape.LayerCount),
            ["num_key_value_heads"] = w => w.WriteNumberValue(shape.KvHeadCount),
            // Python's spelling (1e-05): .NET would write 1E-05, equally valid JSON but unlike every real config.
            ["rms_norm_eps"] = w => w.WriteRawValue(shape.RmsNormEps.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant()),
            ["rope_theta"] = w => w.WriteNumberValue(shape.Rope.Theta),
            ["tie_word_embeddings"] = w => w.WriteBooleanValue(shape.TieWordEmbeddings),
            ["torch_dtype"] = w => w.WriteStringValue(TorchDTypeName(options.DType)),
            ["use_cache"] = w => w.WriteBooleanValue(true),
            ["vocab_size"] = w => w.WriteNumberValue(shape.VocabSize),
        };

        Action<Utf8JsonWriter> nullValue = w => w.WriteNullValue();
        Action<Utf8JsonWriter> falseValue = w => w.WriteBooleanValue(false);
        switch (arch)
        {
            case ModelArchitecture.Llama:
                keys["attention_bias"] = falseValue;
                keys["mlp_bias"] = falseValue;
                keys["pretraining_tp"] = w => w.WriteNumberValue(1);
                keys["rope_scaling"] = w => WriteRopeScaling(w, shape.Rope);
                break;
            case ModelArchitecture.Mistral:
                keys["sliding_window"] = w => WriteNullableInt(w, shape.SlidingWindow);
                break;
            case ModelArchitecture.Qwen2:
            case ModelArchitecture.Qwen3:
                if (arch == ModelArchitecture.Qwen3)
                {
                    keys["attention_bias"] = falseValue;
                }

                keys["max_window_layers"] = w => w.WriteNumberValue(shape.LayerCount);
                keys["rope_scaling"] = w => WriteRopeScaling(w, shape.Rope);
                keys["sliding_window"] = w => WriteNullableInt(w, shape.SlidingWindow);
                keys["use_sliding_window"] = falseValue;
                break;
            default:
                throw new ArgumentException($"Unsupported architecture {arch}.", nameof(shape));
        }

        return WriteJson(w =>
        {
            w.WriteStartObject();
            foreach (var (key, write) in keys)
            {
                w.WritePropertyName(key);
                write(w);
            }

            w.WriteEndObject();
        });
    }

    /// <summary>The generation_config.json of a synthetic model (BOS/EOS of the byte-level tokenizer).</summary>
    public static byte[] CreateGenerationConfigJson() => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteBoolean("_from_model_config", true);
        w.WriteNumber("bos_token_id", ByteLevelTokenizerWriter.EndOfTextId);
        w.WriteNumber("eos_token_id", ByteLevelTokenizerWriter.EndOfTextId);
        w.WriteEndObject();
    });

    /// <summary>
    /// A <see cref="SafeTensorsWriter"/> with every tensor of <paramref name="shape"/> declared and its synthetic
    /// data source attached, ready to write (used by <see cref="Write"/>; exposed for custom layouts).
    /// </summary>
    /// <param name="shape">The architecture.</param>
    /// <param name="options">Dtype, seed and std.</param>
    internal static SafeTensorsWriter CreateWeightsWriter(ModelShape shape, SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(options);
        Validate(shape, options);
        var writer = new SafeTensorsWriter { MaxDegreeOfParallelism = Environment.ProcessorCount };
        var dtype = options.DType;
        foreach (var t in shape.EnumerateTensors())
        {
            TensorDataSource source = t.Role == ModelTensorRole.Norm
                ? (dst, _) => SyntheticWeights.FillOnes(dst, dtype)
                : CreateNormalSource(SyntheticWeights.TensorKey(options.Seed, t.Name), dtype, options.Std);
            writer.AddTensor(t.Name, dtype, t.Shape, source);
        }

        return writer;
    }

    private static TensorDataSource CreateNormalSource(ulong key, TensorDType dtype, float std)
    {
        var size = dtype.SizeInBytes();
        return (dst, offset) => SyntheticWeights.FillNormal(dst, offset / size, dtype, key, std);
    }

    private static void Validate(ModelShape shape, SyntheticModelOptions options)
    {
        shape.Validate();
        if (options.DType is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32))
        {
            throw new ArgumentException($"Synthetic weights can be F16, BF16 or F32, not {options.DType}.", nameof(options));
        }

        if (!(options.Std > 0) || float.IsInfinity(options.Std))
        {
            throw new ArgumentException($"Std must be a positive finite number, not {options.Std}.", nameof(options));
        }

        if (shape.VocabSize < ByteLevelTokenizerWriter.VocabSize)
        {
            throw new ArgumentException(
                $"Model shape '{shape.Name}' has a vocabulary of {shape.VocabSize}; the synthetic byte-level tokenizer needs at least {ByteLevelTokenizerWriter.VocabSize}.", nameof(shape));
        }
    }

    /// <summary>Whether an existing model directory must be replaced; throws when it may not be.</summary>
    private static bool CheckTarget(string target, bool overwrite)
    {
        if (File.Exists(target))
        {
            throw new IOException($"Cannot write a model to {target}: a file of that name exists.");
        }

        if (!Directory.Exists(target) || !Directory.EnumerateFileSystemEntries(target).Any())
        {
            return Directory.Exists(target);
        }

        if (!overwrite)
        {
            throw new IOException($"Output directory {target} exists and is not empty. Choose another directory or overwrite it explicitly (--force).");
        }

        if (!File.Exists(Path.Combine(target, "config.json")))
        {
            throw new IOException($"Output directory {target} is not empty and holds no config.json; it does not look like a model directory, so it is not replaced even with overwrite.");
        }

        return true;
    }

    private static void Publish(string staging, string target, bool replace)
    {
        if (!replace)
        {
            Directory.Move(staging, target);
            return;
        }

        // Move the old directory aside first: the new model appears in one rename, and the old one is deleted only
        // once the new one is in place.
        var aside = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
        Directory.Move(target, aside);
        try
        {
            Directory.Move(staging, target);
        }
        catch
        {
            Directory.Move(aside, target);
            throw;
        }

        TryDeleteDirectory(aside);
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string CreateReadme(ModelShape shape, SyntheticModelOptions options)
    {
        var inv = CultureInfo.InvariantCulture;
        var source = shape.SourceRepository ?? shape.Name;
        var sb = new StringBuilder();
        sb.Append(inv, $"# {shape.Name}: synthetic random weights\n\n");
        sb.Append(inv, $"These are **random weights** in the shape of `{source}` ({shape.ArchitectureName}, {shape.ParameterCount:N0} parameters), ");
        sb.Append("written by `kvfusion model init` for benchmarks at real sizes without downloads. This is not a trained model: ");
        sb.Append("its outputs are meaningless, and nothing of the original model (weights or tokenizer) is included.\n\n");
        sb.Append("| setting | value |\n| --- | --- |\n");
        sb.Append(inv, $"| architecture | {shape.ArchitectureName} (`{shape.ModelType}`) |\n");
        sb.Append(inv, $"| layers | {shape.LayerCount} |\n");
        sb.Append(inv, $"| hidden / intermediate | {shape.HiddenSize} / {shape.IntermediateSize} |\n");
        sb.Append(inv, $"| heads / KV heads / head_dim | {shape.HeadCount} / {shape.KvHeadCount} / {shape.HeadDim} |\n");
        sb.Append(inv, $"| vocabulary | {shape.VocabSize} |\n");
        sb.Append(inv, $"| context | {shape.MaxPositionEmbeddings} |\n");
        sb.Append(inv, $"| RoPE | θ = {shape.Rope.Theta}, {shape.Rope.RopeType} |\n");
        sb.Append(inv, $"| tied embeddings | {(shape.TieWordEmbeddings ? "yes" : "no")} |\n");
        sb.Append(inv, $"| dtype | {TorchDTypeName(options.DType)} |\n");
        sb.Append(inv, $"| seed / std | {options.Seed} / {options.Std} |\n\n");
        sb.Append("Weights and biases are normal(0, std); RMSNorm scales are 1. Every element is a function of the seed, ");
        sb.Append("the tensor name (FNV-1a 64) and its index only, so the same seed gives byte-identical files everywhere.\n\n");
        sb.Append(inv, $"The tokenizer is a byte-level BPE without merges ({ByteLevelTokenizerWriter.VocabSize} ids: one per byte, ");
        sb.Append(inv, $"plus `{ByteLevelTokenizerWriter.EndOfTextToken}` = {ByteLevelTokenizerWriter.EndOfTextId}, used as BOS and EOS), ");
        sb.Append("not the original model's tokenizer; ids above 256 exist in the embedding but are never produced by it.\n");
        return sb.ToString();
    }

    private static void WriteRopeScaling(Utf8JsonWriter w, RopeParameters rope)
    {
        if (rope.RopeType != "llama3")
        {
            w.WriteNullValue();
            return;
        }

        w.WriteStartObject();
        w.WriteNumber("factor", rope.Factor);
        w.WriteNumber("high_freq_factor", rope.HighFreqFactor);
        w.WriteNumber("low_freq_factor", rope.LowFreqFactor);
        w.WriteNumber("original_max_position_embeddings", rope.OriginalMaxPositionEmbeddings);
        w.WriteString("rope_type", "llama3");
        w.WriteEndObject();
    }

    private static void WriteNullableInt(Utf8JsonWriter w, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumberValue(v);
        }
        else
        {
            w.WriteNullValue();
        }
    }

    private static string TorchDTypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.F16 => "float16",
        TensorDType.BF16 => "bfloat16",
        TensorDType.F32 => "float32",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a weight dtype."),
    };

    // 0.02f widened to double is 0.019999999552965164; the config should say 0.02, as a human wrote it.
    private static double ShortestDouble(float value) =>
        double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static byte[] WriteJson(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            write(w);
        }

        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private sealed class FractionProgress(IProgress<double> inner, long total) : IProgress<long>
    {
        public void Report(long value) => inner.Report(total > 0 ? Math.Min(1.0, (double)value / total) : 1.0);
    }
}

/// <summary>
/// The synthetic weight generator. Element <c>i</c> of a tensor is a pure function of (seed, tensor name, i), so
/// any range of any tensor can be produced independently, in parallel, in any block size, with the same bytes.
/// Only IEEE-exact operations (add, multiply, divide, sqrt, integer ops; no FMA, no library transcendental
/// functions, whose last bits differ between CPUs and runtimes) are used, so the bytes, and thus the model
/// fingerprint, are the same on every machine.
/// </summary>
internal static class SyntheticWeights
{
    // Elements come in groups of 16 from 8 pairs: a pair (counter p) gives one Box-Muller pair (r·cos, r·sin);
    // group g holds the cosines of pairs 8g..8g+7 and then their sines.
    internal const int GroupSize = 16;

    private const int BlockElements = 4096;

    /// <summary>The per-tensor key: a 64-bit mix of the seed and the FNV-1a 64 hash of the UTF-8 name.</summary>
    internal static ulong TensorKey(ulong seed, string name)
    {
        var fnv = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            fnv = (fnv ^ b) * 1099511628211UL;
        }

        return Mix64(fnv + Mix64(seed + 0x9E3779B97F4A7C15UL));
    }

    /// <summary>Fills <paramref name="destination"/> with the constant 1 in <paramref name="dtype"/>.</summary>
    internal static void FillOnes(Span<byte> destination, TensorDType dtype)
    {
        switch (dtype)
        {
            case TensorDType.F16:
                MemoryMarshal.Cast<byte, ushort>(destination).Fill(0x3C00);
                break;
            case TensorDType.BF16:
                MemoryMarshal.Cast<byte, ushort>(destination).Fill(0x3F80);
                break;
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(destination).Fill(1f);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a weight dtype.");
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> (whole elements of <paramref name="dtype"/>) with normal(0, std)
    /// elements <paramref name="firstElement"/>, <paramref name="firstElement"/>+1, ... of the tensor keyed
    /// <paramref name="key"/>.
    /// </summary>
    // The hot kernels skip tier-0 JIT: unoptimized Vector256 code is ~50x slower, and a 135M model is written
    // in well under a second, before tiering would have caught up.
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void FillNormal(Span<byte> destination, long firstElement, TensorDType dtype, ulong key, float std)
    {
        var size = dtype.SizeInBytes();
        var count = destination.Length / size;
        Span<float> values = stackalloc float[BlockElements];
        Span<ushort> halves = stackalloc ushort[BlockElements];
        var element = firstElement;
        var done = 0;
        while (done < count)
        {
            var skip = (int)(element % GroupSize);
            var n = Math.Min(count - done, BlockElements - skip);
            var groups = (skip + n + GroupSize - 1) / GroupSize;
            GenerateGroups(values[..(groups * GroupSize)], element / GroupSize, key, std);
            var dst = destination.Slice(done * size, n * size);
            switch (dtype)
            {
                case TensorDType.F32:
                    values.Slice(skip, n).CopyTo(MemoryMarshal.Cast<byte, float>(dst));
                    break;
                case TensorDType.F16:
                    ToHalf(values[..(groups * GroupSize)], halves);
                    halves.Slice(skip, n).CopyTo(MemoryMarshal.Cast<byte, ushort>(dst));
                    break;
                case TensorDType.BF16:
                    ToBFloat16(values[..(groups * GroupSize)], halves);
                    halves.Slice(skip, n).CopyTo(MemoryMarshal.Cast<byte, ushort>(dst));
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a weight dtype.");
            }

            element += n;
            done += n;
        }
    }

    /// <summary>Generates whole groups of normal(0, std) floats starting at group <paramref name="firstGroup"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void GenerateGroups(Span<float> destination, long firstGroup, ulong key, float std)
    {
        var lanes = Vector256.Create(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u);
        var scale = Vector256.Create(1f / (1 << 24));
        var one = Vector256<uint>.One;
        var half = Vector256.Create(0.5f);
        var pi = Vector256.Create(MathF.PI);
        var minusTwoStd2 = Vector256.Create(-2f * std * std);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        var groups = destination.Length / GroupSize;

        var currentHigh = ulong.MaxValue;
        Vector256<uint> k1 = default, k2 = default;
        for (var g = 0; g < groups; g++)
        {
            var pair = (ulong)(firstGroup + g) * 8;
            if (pair >> 32 != currentHigh)
            {
                // Counters are 32-bit lanes; past 2^32 pairs (tensors over 8.6G elements) the key moves on.
                currentHigh = pair >> 32;
                var k = currentHigh == 0 ? key : Mix64(key + (currentHigh * 0x9E3779B97F4A7C15UL));
                k1 = Vector256.Create((uint)k);
                k2 = Vector256.Create((uint)(k >> 32));
            }

            var counter = Vector256.Create((uint)pair) + lanes;
            var h1 = Mix32(counter + k1);
            var h2 = Mix32(h1 + k2);

            // u1 in (0, 1] keeps the logarithm finite; u2 in [0, 1). 24 bits each: exact in float.
            var u1 = Vector256.ConvertToSingle(((h1 >>> 8) + one).AsInt32()) * scale;
            var u2 = Vector256.ConvertToSingle((h2 >>> 8).AsInt32()) * scale;
            var r = Vector256.Sqrt(minusTwoStd2 * Log(u1));

            // Box-Muller's angle 2π·u2, shifted by π (which only flips both signs: same distribution), is 2x with
            // x in [-π/2, π/2), where short polynomials are accurate; double-angle formulas give sin and cos of 2x.
            var x = (u2 - half) * pi;
            var (s, c) = SinCos(x);
            var sin2 = (s * c) + (s * c);
            var cos2 = (c * c) - (s * s);

            (r * cos2).StoreUnsafe(ref dst, (nuint)(g * GroupSize));
            (r * sin2).StoreUnsafe(ref dst, (nuint)((g * GroupSize) + 8));
        }
    }

    /// <summary>float → IEEE binary16 bits, round to nearest even (as <c>(Half)x</c>); length a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ToHalf(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        for (nuint i = 0; i < (nuint)source.Length; i += 16)
        {
            var lo = HalfBits(Vector256.LoadUnsafe(ref src, i));
            var hi = HalfBits(Vector256.LoadUnsafe(ref src, i + 8));
            Vector256.Narrow(lo, hi).StoreUnsafe(ref dst, i);
        }
    }

    /// <summary>float → bfloat16 bits, round to nearest even; length a multiple of 16. Inputs are finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ToBFloat16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        var bias = Vector256.Create(0x7FFFu);
        var one = Vector256<uint>.One;
        for (nuint i = 0; i < (nuint)source.Length; i += 16)
        {
            var a = Vector256.LoadUnsafe(ref src, i).AsUInt32();
            var b = Vector256.LoadUnsafe(ref src, i + 8).AsUInt32();
            a = (a + bias + ((a >>> 16) & one)) >>> 16;
            b = (b + bias + ((b >>> 16) & one)) >>> 16;
            Vector256.Narrow(a, b).StoreUnsafe(ref dst, i);
        }
    }

    private static ulong Mix64(ulong z)
    {
        // SplitMix64's finalizer.
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Mix32(Vector256<uint> x)
    {
        // lowbias32 (C. Wellons): a bijective 32-bit hash with near-ideal avalanche, cheap in SIMD.
        x ^= x >>> 16;
        x *= Vector256.Create(0x7feb352du);
        x ^= x >>> 15;
        x *= Vector256.Create(0x846ca68bu);
        x ^= x >>> 16;
        return x;
    }

    /// <summary>Natural logarithm of normal floats in (0, 1]; absolute error about 1e-7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Log(Vector256<float> u)
    {
        // u = m·2^k with m in [√½, √2); ln m = 2·atanh(s), s = (m-1)/(m+1), |s| ≤ 0.172, so five odd terms
        // leave an error below 1e-9.
        var bits = u.AsInt32();
        var k = (bits - Vector256.Create(0x3f3504f3)) >> 23;
        var m = (bits - (k << 23)).AsSingle();
        var one = Vector256<float>.One;
        var s = (m - one) / (m + one);
        var s2 = s * s;
        var p = Vector256.Create(1f / 9);
        p = (p * s2) + Vector256.Create(1f / 7);
        p = (p * s2) + Vector256.Create(1f / 5);
        p = (p * s2) + Vector256.Create(1f / 3);
        p = (p * s2) + one;
        return (Vector256.ConvertToSingle(k) * Vector256.Create(0.6931472f)) + ((s + s) * p);
    }

    /// <summary>Sine and cosine on [-π/2, π/2] by Taylor polynomials; error below 1e-7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Sin, Vector256<float> Cos) SinCos(Vector256<float> x)
    {
        var x2 = x * x;
        var sp = Vector256.Create(-1f / 39916800);
        sp = (sp * x2) + Vector256.Create(1f / 362880);
        sp = (sp * x2) + Vector256.Create(-1f / 5040);
        sp = (sp * x2) + Vector256.Create(1f / 120);
        sp = (sp * x2) + Vector256.Create(-1f / 6);
        sp = (sp * x2) + Vector256<float>.One;
        var cp = Vector256.Create(1f / 479001600);
        cp = (cp * x2) + Vector256.Create(-1f / 3628800);
        cp = (cp * x2) + Vector256.Create(1f / 40320);
        cp = (cp * x2) + Vector256.Create(-1f / 720);
        cp = (cp * x2) + Vector256.Create(1f / 24);
        cp = (cp * x2) + Vector256.Create(-0.5f);
        cp = (cp * x2) + Vector256<float>.One;
        return (sp * x, cp);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> HalfBits(Vector256<float> value)
    {
        // F. Giesen's float_to_half_fast3_rtne, branch-free: overflow to inf (NaN stays NaN), denormals by the
        // float adder's own rounding, normals by rebiasing with round-to-nearest-even on the dropped 13 bits.
        var f = value.AsUInt32();
        var sign = f & Vector256.Create(0x80000000u);
        f ^= sign;
        var fi = f.AsInt32();
        var big = Vector256.GreaterThanOrEqual(fi, Vector256.Create(143 << 23)).AsUInt32();
        var infOrNan = Vector256.ConditionalSelect(
            Vector256.GreaterThan(fi, Vector256.Create(255 << 23)).AsUInt32(), Vector256.Create(0x7E00u), Vector256.Create(0x7C00u));
        var small = Vector256.LessThan(fi, Vector256.Create(113 << 23)).AsUInt32();
        var magic = Vector256.Create(126u << 23);
        var denormal = (f.AsSingle() + magic.AsSingle()).AsUInt32() - magic;
        var odd = (f >>> 13) & Vector256<uint>.One;
        var normal = (f + Vector256.Create(unchecked((uint)((15 - 127) << 23) + 0xFFFu)) + odd) >>> 13;
        var bits = Vector256.ConditionalSelect(big, infOrNan, Vector256.ConditionalSelect(small, denormal, normal));
        return bits | (sign >>> 16);
    }
}
