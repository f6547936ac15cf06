using System.Globalization;
using System.Runtime.InteropServices;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Diagnostics.Conformance;

/// <summary>One operation case of <see cref="BackendConformance"/>: how far the candidate is from the reference.</summary>
/// <param name="Operation">The backend operation.</param>
/// <param name="Case">The shapes and dtypes of the case.</param>
/// <param name="Elements">Output elements compared.</param>
/// <param name="MaxAbsError">Largest absolute difference.</param>
/// <param name="ReferenceScale">Largest absolute reference value (the scale the error is relative to).</param>
/// <param name="Tolerance">Largest relative error accepted.</param>
/// <param name="Unwritten">Output elements the candidate left untouched (they still hold the NaN poured in first).</param>
/// <param name="Failure">An exception the case raised, if any.</param>
public sealed record BackendCheck(string Operation, string Case, long Elements, double MaxAbsError, double ReferenceScale, double Tolerance, long Unwritten, string? Failure)
{
    /// <summary>Largest absolute error over the largest absolute reference value.</summary>
    public double RelativeError => ReferenceScale > 0 ? MaxAbsError / ReferenceScale : MaxAbsError;

    /// <summary>Whether the case ran, wrote every element and stayed within tolerance.</summary>
    public bool Passed => Failure is null && Unwritten == 0 && RelativeError <= Tolerance;
}

/// <summary>
/// Runs every operation of a candidate backend and of a reference backend (the CPU) on the same fresh random inputs
/// and compares the outputs: relative error within the precision the candidate promises, every output element
/// written. The candidate's outputs are filled with NaN before each operation, so an element it never writes shows.
/// </summary>
public sealed class BackendConformance : IDisposable
{
    private const double F32Tolerance = 2e-5;
    private const double AttentionTolerance = 1e-4;
    private static readonly TensorDType[] WeightTypes = [TensorDType.F32, TensorDType.F16, TensorDType.BF16];

    private readonly ComputeBackend _candidate;
    private readonly ComputeBackend _reference;
    private readonly Random _random;
    private readonly string _weightsPath;
    private readonly SafeTensorsFile _weights;
    private readonly List<DeviceTensor> _owned = [];

    /// <summary>Prepares the checks: writes the random weights they use to a safetensors file in <paramref name="workDirectory"/>.</summary>
    public BackendConformance(ComputeBackend candidate, ComputeBackend reference, string workDirectory, int seed = 20261127)
    {
        _candidate = candidate;
        _reference = reference;
        _random = new Random(seed);
        Directory.CreateDirectory(workDirectory);
        _weightsPath = Path.Combine(workDirectory, string.Create(CultureInfo.InvariantCulture, $"conformance-{seed}-{Environment.ProcessId}.safetensors"));
        var tensors = new List<(string, TensorDType, int[], byte[])>();
        foreach (var dtype in WeightTypes)
        {
            foreach (var (rows, cols, scale) in WeightShapes)
            {
                tensors.Add((WeightName(dtype, rows, cols), dtype, [rows, cols], Encode(RandomFloats(rows * cols, scale), dtype)));
            }
        }

        SafeTensorsWriter.WriteFile(_weightsPath, tensors);
        _weights = SafeTensorsFile.Open(_weightsPath);
    }

    // (rows, cols, scale): embedding tables, norm weights (one row) and GEMM weights with their biases.
    private static readonly (int Rows, int Cols, float Scale)[] WeightShapes =
    [
        (97, 72, 1f), (1, 72, 1f), (1, 200, 1f), (1, 1024, 1f), (1, 64, 1f), (1, 128, 1f),
        (80, 96, 0.1f), (1, 80, 0.5f), (200, 256, 0.1f), (1000, 512, 0.05f),
    ];

    /// <summary>Runs every case; a case that throws is reported as failed, not rethrown.</summary>
    public IReadOnlyList<BackendCheck> RunAll(IProgress<BackendCheck>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new List<BackendCheck>();
        foreach (var (operation, name, run) in Cases())
        {
            cancellationToken.ThrowIfCancellationRequested();
            BackendCheck result;
            try
            {
                result = run();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                result = new BackendCheck(operation, name, 0, double.NaN, double.NaN, 0, 0, $"{e.GetType().Name}: {e.Message}");
            }

            results.Add(result);
            progress?.Report(result);
        }

        return results;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _owned)
        {
            t.Dispose();
        }

        _owned.Clear();
        _weights.Dispose();
        try
        {
            File.Delete(_weightsPath);
        }
        catch (IOException)
        {
        }
    }

    private IEnumerable<(string Operation, string Case, Func<BackendCheck> Run)> Cases()
    {
        foreach (var dt in WeightTypes)
        {
            yield return ("Embed", $"{dt} table 97×72, 13 ids", () => Embed(dt));
        }

        foreach (var dt in WeightTypes)
        {
            foreach (var cols in new[] { 200, 1024 })
            {
                yield return ("RmsNorm", $"{dt} weight, 5×{cols}", () => RmsNorm(dt, 5, cols));
            }

            foreach (var hd in new[] { 64, 128 })
            {
                yield return ("RmsNormHeads", $"{dt} weight, 7 rows × 4 heads of {hd}", () => RmsNormHeads(dt, 7, hd));
            }
        }

        foreach (var dt in WeightTypes)
        {
            foreach (var (rows, outF, inF) in new[] { (1, 80, 96), (3, 200, 256), (37, 80, 96), (130, 200, 256), (300, 1000, 512) })
            {
                foreach (var (bias, accumulate) in new[] { (false, false), (true, false), (false, true), (true, true) })
                {
                    if (rows == 300 && (bias || accumulate))
                    {
                        continue;
                    }

                    yield return ("MatMul", $"{dt} weight {outF}×{inF}, {rows} rows{(bias ? ", bias" : "")}{(accumulate ? ", accumulate" : "")}",
                        () => MatMul(dt, rows, outF, inF, bias, accumulate));
                }
            }
        }

        foreach (var hd in new[] { 32, 64, 128 })
        {
            yield return ("ApplyRope", $"head dim {hd}, 9 rows × 3 heads, positions to 8191 and negative", () => Rope(hd, inPlace: false));
            yield return ("ApplyRope", $"head dim {hd}, in place", () => Rope(hd, inPlace: true));
        }

        yield return ("SiluMultiply", "11×333", () => Elementwise(silu: true));
        yield return ("Add", "11×333", () => Elementwise(silu: false));
        yield return ("ScatterToCache", "2 kv heads × 40 slots × 64, 17 rows", () => Scatter());
        yield return ("GatherFromCache", "2 kv heads × 40 slots × 64, 17 rows", () => Gather());
        yield return ("ImportHalfToCache", "K: 23 tokens at slot 9 of 2 kv heads × 40 slots × 64, RoPE", () => ImportHalf(rope: true));
        yield return ("ImportHalfToCache", "V: 23 tokens at slot 9 of 2 kv heads × 40 slots × 64", () => ImportHalf(rope: false));
        yield return ("GatherRows", "F32 rows of 130, 21 of 50", () => GatherRows());
        yield return ("CacheDeviation", "2 kv heads × 40 slots × 128, 23 rows", () => Deviation());
        foreach (var (n, k) in new[] { (1, 1), (50, 7), (1000, 150), (5000, 750), (8192, 1) })
        {
            yield return ("SelectTopK", $"{n} scores (with ties), k = {k}", () => TopK(n, k));
        }

        foreach (var hd in new[] { 32, 64, 128 })
        {
            foreach (var (rows, heads, kvHeads, keys, capacity) in new[] { (1, 8, 2, 300, 320), (3, 14, 2, 77, 80), (37, 8, 2, 150, 160), (100, 4, 4, 260, 260), (2, 32, 8, 1500, 1600) })
            {
                foreach (var weights in new[] { false, true })
                {
                    yield return ("Attention", $"hd {hd}, {rows} rows, {heads}/{kvHeads} heads, {keys} keys{(weights ? ", key weights" : "")}",
                        () => Attention(hd, rows, heads, kvHeads, keys, capacity, weights));
                }
            }
        }

        yield return ("Attention", "blend rows: 40 scattered query positions over 200 keys, hd 64", () => Attention(64, 40, 8, 2, 200, 200, keyWeights: true, scattered: true));
        yield return ("Attention", "rows that see no key", () => Attention(64, 6, 4, 2, 50, 64, keyWeights: false, scattered: false, early: true));
    }

    private BackendCheck Embed(TensorDType dt)
    {
        var table = _weights.Get(WeightName(dt, 97, 72));
        var ids = new int[13];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = _random.Next(97);
        }

        var (ct, rt) = (Own(_candidate.CreateWeight(table, 97, 72)), Own(_reference.CreateWeight(table, 97, 72)));
        var (ci, ri) = Ints(ids, 13, 1);
        var (co, ro) = Output(13, 72);
        _candidate.Embed(ct, ci, 13, co);
        _reference.Embed(rt, ri, 13, ro);
        return Compare("Embed", $"{dt}", co, ro, 13, 72, F32Tolerance);
    }

    private BackendCheck RmsNorm(TensorDType dt, int rows, int cols)
    {
        var (cw, rw) = Weight(dt, 1, cols);
        var (cx, rx) = Floats(RandomFloats(rows * cols, 2f), rows, cols);
        var (co, ro) = Output(rows, cols);
        _candidate.RmsNorm(cx, rows, cw, 1e-6f, co);
        _reference.RmsNorm(rx, rows, rw, 1e-6f, ro);
        return Compare("RmsNorm", $"{dt} {rows}×{cols}", co, ro, rows, cols, F32Tolerance);
    }

    private BackendCheck RmsNormHeads(TensorDType dt, int rows, int hd)
    {
        var cols = 4 * hd;
        var (cw, rw) = Weight(dt, 1, hd);
        var data = RandomFloats(rows * cols, 3f);
        var (cx, rx) = Floats(data, rows, cols);
        _candidate.RmsNormHeads(cx, rows, hd, cw, 1e-6f);
        _reference.RmsNormHeads(rx, rows, hd, rw, 1e-6f);
        return Compare("RmsNormHeads", $"{dt}", cx, rx, rows, cols, F32Tolerance);
    }

    private BackendCheck MatMul(TensorDType dt, int rows, int outF, int inF, bool bias, bool accumulate)
    {
        var (cw, rw) = Weight(dt, outF, inF);
        (DeviceTensor C, DeviceTensor R)? b = bias ? Weight(dt, 1, outF) : null;

        // x wider than the weight's input (lda > in) and the output wider than out (ldc > out), as the engine uses them.
        var (cx, rx) = Floats(RandomFloats(rows * (inF + 8), 1f), rows, inF + 8);
        // Accumulating starts from random values; otherwise from NaN on both sides, so an unwritten element shows
        // and the 4 columns past the weight's output (which both must leave alone) compare equal.
        var start = accumulate ? RandomFloats(rows * (outF + 4), 1f) : NaNs(rows * (outF + 4));
        var (co, ro) = Floats(start, rows, outF + 4);
        _candidate.MatMul(cx, rows, cw, b?.C, co, accumulate);
        _reference.MatMul(rx, rows, rw, b?.R, ro, accumulate);

        // The GPU rounds activations to the weights' half type before its GEMM: its error is that rounding.
        var tolerance = dt switch { TensorDType.F16 => 2e-3, TensorDType.BF16 => 1.2e-2, _ => 1e-5 };
        return Compare("MatMul", $"{dt}", co, ro, rows, outF + 4, tolerance, prefilled: accumulate);
    }

    private BackendCheck Rope(int hd, bool inPlace)
    {
        const int rows = 9;
        var cols = 3 * hd;
        var positions = new int[rows];
        for (var i = 0; i < rows; i++)
        {
            positions[i] = i switch { 0 => 0, 1 => 8191, 2 => -517, _ => _random.Next(-4000, 8000) };
        }

        var inv = new float[hd / 2];
        for (var i = 0; i < inv.Length; i++)
        {
            inv[i] = (float)Math.Pow(500000.0, -2.0 * i / hd);
        }

        var (cx, rx) = Floats(RandomFloats(rows * cols, 1f), rows, cols);
        var (cp, rp) = Ints(positions, rows, 1);
        var (cf, rf) = Floats(inv, inv.Length, 1);
        var (co, ro) = inPlace ? (cx, rx) : Output(rows, cols);
        _candidate.ApplyRope(cx, rows, hd, cp, cf, co);
        _reference.ApplyRope(rx, rows, hd, rp, rf, ro);
        return Compare("ApplyRope", $"hd {hd}", co, ro, rows, cols, 1e-4, prefilled: inPlace);
    }

    private BackendCheck Elementwise(bool silu)
    {
        const int rows = 11, cols = 333;
        var (cg, rg) = Floats(RandomFloats(rows * cols, 6f), rows, cols);
        var (cu, ru) = Floats(RandomFloats(rows * cols, 2f), rows, cols);
        if (silu)
        {
            var (co, ro) = Output(rows, cols);
            _candidate.SiluMultiply(cg, cu, rows, co);
            _reference.SiluMultiply(rg, ru, rows, ro);
            return Compare("SiluMultiply", string.Empty, co, ro, rows, cols, F32Tolerance);
        }

        _candidate.Add(cg, cu, rows);
        _reference.Add(rg, ru, rows);
        return Compare("Add", string.Empty, cg, rg, rows, cols, F32Tolerance, prefilled: true);
    }

    private int[] Permutation(int n, int count)
    {
        var all = new int[n];
        for (var i = 0; i < n; i++)
        {
            all[i] = i;
        }

        _random.Shuffle(all);
        return all[..count];
    }

    private BackendCheck Scatter()
    {
        const int kvh = 2, cap = 40, hd = 64, rows = 17;
        var (cc, rc) = Floats(RandomFloats(kvh * cap * hd, 1f), kvh * cap, hd);
        var (cs, rs) = Floats(RandomFloats(rows * kvh * hd, 1f), rows, kvh * hd);
        var (cl, rl) = Ints(Permutation(cap, rows), rows, 1);
        _candidate.ScatterToCache(cs, rows, cl, cc, kvh, cap);
        _reference.ScatterToCache(rs, rows, rl, rc, kvh, cap);
        return Compare("ScatterToCache", string.Empty, cc, rc, kvh * cap, hd, 0, prefilled: true);
    }

    private BackendCheck Gather()
    {
        const int kvh = 2, cap = 40, hd = 64, rows = 17;
        var (cc, rc) = Floats(RandomFloats(kvh * cap * hd, 1f), kvh * cap, hd);
        var (cl, rl) = Ints(Permutation(cap, rows), rows, 1);
        var (co, ro) = Output(rows, kvh * hd);
        _candidate.GatherFromCache(cc, kvh, cap, cl, rows, co);
        _reference.GatherFromCache(rc, kvh, cap, rl, rows, ro);
        return Compare("GatherFromCache", string.Empty, co, ro, rows, kvh * hd, 0);
    }

    private BackendCheck ImportHalf(bool rope)
    {
        const int kvh = 2, cap = 40, hd = 64, count = 23, first = 9;
        var source = RandomFloats(kvh * count * hd, 2f);
        var halves = new Half[source.Length];
        for (var i = 0; i < source.Length; i++)
        {
            halves[i] = (Half)source[i];
        }

        var positions = new int[count];
        for (var i = 0; i < count; i++)
        {
            positions[i] = 3000 + (7 * i);
        }

        var inv = new float[hd / 2];
        for (var i = 0; i < inv.Length; i++)
        {
            inv[i] = (float)Math.Pow(10000.0, -2.0 * i / hd);
        }

        // The whole cache is compared: slots outside the import must keep their values on both sides.
        var (cc, rc) = Floats(RandomFloats(kvh * cap * hd, 1f), kvh * cap, hd);
        var (cp, rp) = Ints(positions, count, 1);
        var (cf, rf) = Floats(inv, inv.Length, 1);
        _candidate.ImportHalfToCache(halves, count, cc, kvh, cap, first, rope ? cp : null, rope ? cf : null);
        _reference.ImportHalfToCache(halves, count, rc, kvh, cap, first, rope ? rp : null, rope ? rf : null);
        return Compare("ImportHalfToCache", string.Empty, cc, rc, kvh * cap, hd, rope ? 1e-4 : 0, prefilled: true);
    }

    private BackendCheck GatherRows()
    {
        var (cs, rs) = Floats(RandomFloats(50 * 130, 1f), 50, 130);
        var idx = new int[21];
        for (var i = 0; i < idx.Length; i++)
        {
            idx[i] = _random.Next(50);
        }

        var (ci, ri) = Ints(idx, 21, 1);
        var (co, ro) = Output(21, 130);
        _candidate.GatherRows(cs, ci, 21, co);
        _reference.GatherRows(rs, ri, 21, ro);
        return Compare("GatherRows", string.Empty, co, ro, 21, 130, 0);
    }

    private BackendCheck Deviation()
    {
        const int kvh = 2, cap = 40, hd = 128, rows = 23;
        var (cc, rc) = Floats(RandomFloats(kvh * cap * hd, 1f), kvh * cap, hd);
        var (cf, rf) = Floats(RandomFloats(rows * kvh * hd, 1f), rows, kvh * hd);
        var (cl, rl) = Ints(Permutation(cap, rows), rows, 1);
        var (co, ro) = Output(rows, 1);
        _candidate.CacheDeviation(cf, rows, cl, cc, kvh, cap, co);
        _reference.CacheDeviation(rf, rows, rl, rc, kvh, cap, ro);
        return Compare("CacheDeviation", string.Empty, co, ro, rows, 1, F32Tolerance);
    }

    private BackendCheck TopK(int n, int k)
    {
        // Scores on a coarse grid so that many tie, plus a NaN and infinities.
        var scores = new float[n];
        for (var i = 0; i < n; i++)
        {
            scores[i] = _random.Next(-20, 20) * 0.25f;
        }

        if (n > 10)
        {
            scores[3] = float.NaN;
            scores[5] = float.PositiveInfinity;
            scores[7] = float.NegativeInfinity;
        }

        var (cs, rs) = Floats(scores, n, 1);
        var (ci, ri) = Ints(new int[k], k, 1);
        _candidate.SelectTopK(cs, n, k, ci);
        _reference.SelectTopK(rs, n, k, ri);

        // Indices come back through GatherRows of an identity table (the backend interface downloads floats).
        var identity = new float[n];
        for (var i = 0; i < n; i++)
        {
            identity[i] = i;
        }

        var (cid, rid) = Floats(identity, n, 1);
        var (co, ro) = Output(k, 1);
        _candidate.GatherRows(cid, ci, k, co);
        _reference.GatherRows(rid, ri, k, ro);
        return Compare("SelectTopK", string.Empty, co, ro, k, 1, 0);
    }

    private BackendCheck Attention(int hd, int rows, int heads, int kvHeads, int keys, int capacity, bool keyWeights, bool scattered = false, bool early = false)
    {
        // Key positions: non-decreasing with repeats (a chunk boundary); query positions: the last rows (prefill or
        // decode), scattered over the keys (blend), or before the first key (rows that see nothing).
        var keyPositions = new int[capacity];
        var p = early ? 10 : 0;
        for (var i = 0; i < capacity; i++)
        {
            keyPositions[i] = p;
            p += i % 17 == 16 ? 0 : 1;
        }

        var queryPositions = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            queryPositions[r] = early ? (r < 3 ? r : keyPositions[Math.Min(keys - 1, r * 7)])
                : scattered ? keyPositions[(int)((long)r * (keys - 1) / Math.Max(1, rows - 1))]
                : keyPositions[keys - rows + r];
        }

        var (cq, rq) = Floats(RandomFloats(rows * heads * hd, 1f), rows, heads * hd);
        var (cqp, rqp) = Ints(queryPositions, rows, 1);
        var (ck, rk) = Floats(RandomFloats(kvHeads * capacity * hd, 1f), kvHeads * capacity, hd);
        var (cv, rv) = Floats(RandomFloats(kvHeads * capacity * hd, 1f), kvHeads * capacity, hd);
        var (ckp, rkp) = Ints(keyPositions, capacity, 1);
        var (co, ro) = Output(rows, heads * hd);
        (DeviceTensor C, DeviceTensor R)? weights = keyWeights ? Output(capacity, 1) : null;
        var scale = 1f / MathF.Sqrt(hd);
        _candidate.Attention(new AttentionArguments(cq, rows, cqp, ck, cv, ckp, keys, capacity, heads, kvHeads, hd, scale, co, weights?.C));
        _reference.Attention(new AttentionArguments(rq, rows, rqp, rk, rv, rkp, keys, capacity, heads, kvHeads, hd, scale, ro, weights?.R));
        var output = Compare("Attention", string.Empty, co, ro, rows, heads * hd, AttentionTolerance);
        if (weights is null || !output.Passed)
        {
            return output;
        }

        // Key weights: slots past the key count are zero on both; compare the whole first `keys` rows.
        var w = Compare("Attention", "key weights", weights.Value.C, weights.Value.R, keys, 1, AttentionTolerance);
        return w.Passed ? output : w with { Case = "key weights" };
    }

    private BackendCheck Compare(string operation, string name, DeviceTensor candidate, DeviceTensor reference, int rows, int cols, double tolerance, bool prefilled = false)
    {
        var count = rows * cols;
        var c = new float[count];
        var r = new float[count];
        _candidate.Download(candidate, 0, rows, c);
        _reference.Download(reference, 0, rows, r);
        double maxErr = 0, scale = 0;
        long unwritten = 0;
        for (var i = 0; i < count; i++)
        {
            if (float.IsNaN(c[i]) && !float.IsNaN(r[i]))
            {
                unwritten += prefilled ? 0 : 1;
                maxErr = double.PositiveInfinity;
                continue;
            }

            scale = Math.Max(scale, Math.Abs((double)r[i]));
            if (!(float.IsNaN(c[i]) && float.IsNaN(r[i])))
            {
                maxErr = Math.Max(maxErr, Math.Abs((double)c[i] - r[i]));
            }
        }

        return new BackendCheck(operation, name, count, maxErr, scale, tolerance, unwritten, null);
    }

    private (DeviceTensor C, DeviceTensor R) Weight(TensorDType dt, int rows, int cols)
    {
        var t = _weights.Get(WeightName(dt, rows, cols));
        return (Own(_candidate.CreateWeight(t, rows, cols)), Own(_reference.CreateWeight(t, rows, cols)));
    }

    private (DeviceTensor C, DeviceTensor R) Floats(float[] data, int rows, int cols)
    {
        var c = Own(_candidate.Allocate(TensorDType.F32, rows, cols));
        var r = Own(_reference.Allocate(TensorDType.F32, rows, cols));
        _candidate.Upload(data, c, 0);
        _reference.Upload(data, r, 0);
        return (c, r);
    }

    private (DeviceTensor C, DeviceTensor R) Ints(int[] data, int rows, int cols)
    {
        var c = Own(_candidate.Allocate(TensorDType.I32, rows, cols));
        var r = Own(_reference.Allocate(TensorDType.I32, rows, cols));
        _candidate.Upload(data, c, 0);
        _reference.Upload(data, r, 0);
        return (c, r);
    }

    /// <summary>An output pair: the candidate's filled with NaN (to find unwritten elements), the reference's zeroed.</summary>
    private (DeviceTensor C, DeviceTensor R) Output(int rows, int cols)
    {
        var c = Own(_candidate.Allocate(TensorDType.F32, rows, cols));
        var r = Own(_reference.Allocate(TensorDType.F32, rows, cols));
        _candidate.Upload(NaNs(rows * cols), c, 0);
        return (c, r);
    }

    private static float[] NaNs(int count)
    {
        var nan = new float[count];
        nan.AsSpan().Fill(float.NaN);
        return nan;
    }

    private DeviceTensor Own(DeviceTensor t)
    {
        _owned.Add(t);
        return t;
    }

    private float[] RandomFloats(int count, float scale)
    {
        var data = new float[count];
        for (var i = 0; i < count; i++)
        {
            data[i] = (float)((_random.NextDouble() * 2) - 1) * scale;
        }

        return data;
    }

    private static string WeightName(TensorDType dt, int rows, int cols) => string.Create(CultureInfo.InvariantCulture, $"{dt}.{rows}x{cols}");

    private static byte[] Encode(float[] values, TensorDType dtype)
    {
        switch (dtype)
        {
            case TensorDType.F32:
                return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            case TensorDType.F16:
            {
                var h = new Half[values.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    h[i] = (Half)values[i];
                }

                return MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
            }

            case TensorDType.BF16:
            {
                var b = new ushort[values.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    var u = BitConverter.SingleToUInt32Bits(values[i]);
                    b[i] = (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
                }

                return MemoryMarshal.AsBytes(b.AsSpan()).ToArray();
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Weights are F32, F16 or BF16.");
        }
    }
}
