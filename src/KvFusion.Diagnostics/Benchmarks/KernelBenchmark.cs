using System.Globalization;
using KvFusion.Cuda.Backend;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Diagnostics.Benchmarks;

/// <summary>One measured operation of <see cref="KernelBenchmark"/>.</summary>
/// <param name="Operation">What ran.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Milliseconds">Device time per call.</param>
/// <param name="Achieved">Throughput reached (TFLOP/s for GEMMs, GB/s for memory-bound kernels).</param>
/// <param name="Unit">"TFLOP/s" or "GB/s".</param>
/// <param name="Ceiling">What it is held against (cuBLAS's own peak measured in the same run, or the memory bandwidth).</param>
/// <param name="Target">The fraction of the ceiling the issue asks for.</param>
public sealed record KernelBenchmarkResult(string Operation, string Shape, double Milliseconds, double Achieved, string Unit, double Ceiling, double Target)
{
    /// <summary>Achieved over ceiling.</summary>
    public double FractionOfCeiling => Ceiling > 0 ? Achieved / Ceiling : double.NaN;

    /// <summary>Whether the target fraction is met.</summary>
    public bool MeetsTarget => FractionOfCeiling >= Target;
}

/// <summary>The shape the kernels are measured at (a model's layer, a prompt length and a context length).</summary>
/// <param name="Hidden">Hidden size.</param>
/// <param name="Intermediate">MLP width.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="HeadDim">Head dimension.</param>
/// <param name="PrefillRows">Rows of a prefill GEMM (prompt tokens).</param>
/// <param name="Context">Keys a decode step attends to.</param>
/// <param name="WeightType">The weights' dtype.</param>
public sealed record KernelBenchmarkShape(int Hidden, int Intermediate, int Heads, int KvHeads, int HeadDim, int PrefillRows, int Context, TensorDType WeightType);

/// <summary>
/// Measures the backend's prefill GEMMs against cuBLAS's own peak (measured in the same run) and its memory-bound
/// kernels (elementwise, RMSNorm, RoPE, decode attention) against the memory bandwidth, at one model's shapes.
/// </summary>
public static class KernelBenchmark
{
    /// <summary>The fraction of cuBLAS's peak the prefill GEMMs should reach.</summary>
    public const double GemmTarget = 0.70;

    /// <summary>The fraction of memory bandwidth the memory-bound kernels should reach.</summary>
    public const double BandwidthTarget = 0.60;

    /// <summary>Runs every measurement; <paramref name="bandwidthBytesPerSecond"/> is the bandwidth ceiling.</summary>
    public static IReadOnlyList<KernelBenchmarkResult> Run(CudaBackend backend, KernelBenchmarkShape shape, double bandwidthBytesPerSecond, string workDirectory, int iterations = 20, IProgress<KernelBenchmarkResult>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(shape);
        var results = new List<KernelBenchmarkResult>();
        void Add(KernelBenchmarkResult r)
        {
            results.Add(r);
            progress?.Report(r);
        }

        var peak = backend.MeasureCublasTflops(8192, 8192, 8192, shape.WeightType is TensorDType.F16 ? TensorDType.F16 : TensorDType.BF16, iterations);
        Add(new KernelBenchmarkResult("cuBLAS peak (ceiling)", "8192³ half in/out, fp32 compute", double.NaN, peak, "TFLOP/s", peak, 1));
        var copy = backend.MeasureCopyBytesPerSecond(1L << 30, iterations);
        Add(new KernelBenchmarkResult("device copy", "1 GiB", double.NaN, copy / 1e9, "GB/s", bandwidthBytesPerSecond / 1e9, BandwidthTarget));

        var rows = shape.PrefillRows;
        var h = shape.Hidden;
        var qkv = (shape.Heads + (2 * shape.KvHeads)) * shape.HeadDim;
        var gemms = new (string Name, int Out, int In)[]
        {
            ("q/k/v projection", qkv, h),
            ("o projection", h, shape.Heads * shape.HeadDim),
            ("gate+up projection", 2 * shape.Intermediate, h),
            ("down projection", h, shape.Intermediate),
        };
        var weightPath = Path.Combine(workDirectory, string.Create(CultureInfo.InvariantCulture, $"kernel-bench-{Environment.ProcessId}.safetensors"));
        Directory.CreateDirectory(workDirectory);
        WriteWeights(weightPath, gemms, shape.WeightType);
        try
        {
            using var file = SafeTensorsFile.Open(weightPath);
            foreach (var (name, outF, inF) in gemms)
            {
                using var w = backend.CreateWeight(file.Get(name), outF, inF);
                using var x = Filled(backend, rows, Math.Max(inF, outF), 0.01f);
                using var y = backend.Allocate(TensorDType.F32, rows, outF);
                var ms = backend.MeasureMilliseconds(() => backend.MatMul(x, rows, w, null, y, accumulate: false), iterations);
                var tflops = 2.0 * rows * outF * inF / (ms * 1e-3) / 1e12;
                Add(new KernelBenchmarkResult($"MatMul {name}", string.Create(CultureInfo.InvariantCulture, $"{rows}×{inF} · {outF}×{inF}ᵀ {shape.WeightType}"), ms, tflops, "TFLOP/s", peak, GemmTarget));
            }
        }
        finally
        {
            File.Delete(weightPath);
        }

        var bw = bandwidthBytesPerSecond / 1e9;
        var mlp = (long)rows * shape.Intermediate;
        using (var gate = Filled(backend, rows, shape.Intermediate, 0.5f))
        using (var up = Filled(backend, rows, shape.Intermediate, 0.25f))
        using (var o = backend.Allocate(TensorDType.F32, rows, shape.Intermediate))
        {
            var ms = backend.MeasureMilliseconds(() => backend.SiluMultiply(gate, up, rows, o), iterations);
            Add(Bandwidth("SiluMultiply", $"{rows}×{shape.Intermediate} f32", ms, 12.0 * mlp, bw));
            ms = backend.MeasureMilliseconds(() => backend.Add(o, gate, rows), iterations);
            Add(Bandwidth("Add (residual)", $"{rows}×{shape.Intermediate} f32", ms, 12.0 * mlp, bw));
        }

        var hiddenElements = (long)rows * h;
        using (var x = Filled(backend, rows, h, 0.5f))
        using (var o = backend.Allocate(TensorDType.F32, rows, h))
        using (var normWeight = NormWeight(backend, h, workDirectory))
        {
            var ms = backend.MeasureMilliseconds(() => backend.RmsNorm(x, rows, normWeight, 1e-5f, o), iterations);
            Add(Bandwidth("RmsNorm", $"{rows}×{h} f32", ms, (8.0 * hiddenElements) + (2.0 * h), bw));
        }

        using (var q = Filled(backend, rows, shape.Heads * shape.HeadDim, 0.5f))
        using (var positions = Positions(backend, rows))
        using (var inv = Filled(backend, shape.HeadDim / 2, 1, 1e-3f))
        {
            var ms = backend.MeasureMilliseconds(() => backend.ApplyRope(q, rows, shape.HeadDim, positions, inv, q), iterations);
            Add(Bandwidth("ApplyRope (in place)", $"{rows}×{shape.Heads * shape.HeadDim} f32", ms, 8.0 * rows * shape.Heads * shape.HeadDim, bw));
        }

        var ctx = shape.Context;
        using (var kc = Filled(backend, shape.KvHeads * ctx, shape.HeadDim, 0.1f))
        using (var vc = Filled(backend, shape.KvHeads * ctx, shape.HeadDim, 0.1f))
        using (var kpos = Positions(backend, ctx))
        using (var q = Filled(backend, 1, shape.Heads * shape.HeadDim, 0.5f))
        using (var qpos = backend.Allocate(TensorDType.I32, 1, 1))
        using (var o = backend.Allocate(TensorDType.F32, 1, shape.Heads * shape.HeadDim))
        {
            backend.Upload([ctx - 1], qpos, 0);
            var args = new AttentionArguments(q, 1, qpos, kc, vc, kpos, ctx, ctx, shape.Heads, shape.KvHeads, shape.HeadDim, 1f / MathF.Sqrt(shape.HeadDim), o);
            var ms = backend.MeasureMilliseconds(() => backend.Attention(args), iterations);
            Add(Bandwidth("Attention decode", $"1 row, {ctx} keys, {shape.Heads}/{shape.KvHeads} heads × {shape.HeadDim} f32 KV", ms, 2.0 * 4 * shape.KvHeads * (double)ctx * shape.HeadDim, bw));
        }

        return results;
    }

    private static KernelBenchmarkResult Bandwidth(string name, string shape, double ms, double bytes, double ceilingGbs) =>
        new(name, shape, ms, bytes / (ms * 1e-3) / 1e9, "GB/s", ceilingGbs, BandwidthTarget);

    private static DeviceTensor Filled(CudaBackend backend, int rows, int cols, float scale)
    {
        var t = backend.Allocate(TensorDType.F32, rows, cols);
        var row = new float[cols];
        for (var i = 0; i < cols; i++)
        {
            row[i] = scale * (((i * 37) % 101) - 50) / 50f;
        }

        var block = new float[cols * Math.Min(rows, 256)];
        for (var r = 0; r < Math.Min(rows, 256); r++)
        {
            row.CopyTo(block, r * cols);
        }

        for (var r = 0; r < rows; r += 256)
        {
            var n = Math.Min(256, rows - r);
            backend.Upload(block.AsSpan(0, n * cols), t, r);
        }

        return t;
    }

    private static DeviceTensor Positions(CudaBackend backend, int count)
    {
        var t = backend.Allocate(TensorDType.I32, count, 1);
        var p = new int[count];
        for (var i = 0; i < count; i++)
        {
            p[i] = i;
        }

        backend.Upload(p, t, 0);
        return t;
    }

    private static DeviceTensor NormWeight(CudaBackend backend, int hidden, string workDirectory)
    {
        var path = Path.Combine(workDirectory, string.Create(CultureInfo.InvariantCulture, $"kernel-bench-norm-{Environment.ProcessId}.safetensors"));
        var ones = new byte[hidden * 2];
        for (var i = 0; i < hidden; i++)
        {
            ones[(2 * i) + 1] = 0x3C; // fp16 1.0
        }

        SafeTensorsWriter.WriteFile(path, [("w", TensorDType.F16, [hidden], ones)]);
        try
        {
            using var file = SafeTensorsFile.Open(path);
            return backend.CreateWeight(file.Get("w"), 1, hidden);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static void WriteWeights(string path, (string Name, int Out, int In)[] gemms, TensorDType dtype)
    {
        var writer = new SafeTensorsWriter();
        foreach (var (name, outF, inF) in gemms)
        {
            writer.AddTensor(name, dtype, [outF, inF], (destination, offset) =>
            {
                // Deterministic small half values (about ±0.01): bits of 0x2000..0x21FF with alternating sign.
                for (var i = 0; i + 1 < destination.Length; i += 2)
                {
                    var v = (ushort)(0x2000 + (((offset + i) / 2) % 512));
                    if ((((offset + i) / 2) & 1) != 0)
                    {
                        v |= 0x8000;
                    }

                    destination[i] = (byte)v;
                    destination[i + 1] = (byte)(v >> 8);
                }
            });
        }

        writer.WriteFile(path);
    }
}
