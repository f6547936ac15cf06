using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// The reference backend: float32 compute on the CPU with AVX2/FMA, all cores through a fork/join pool, weights
/// read in place from the memory-mapped checkpoint. Every operation is allocation-free after warm-up.
/// Safe for concurrent use by any number of sessions: each operation holds the backend's operation lock for its
/// whole duration (its parallel region, its serial small-work path, scratch growth, uploads and downloads), so
/// operations of different threads never overlap and their results equal those of the same work run one session
/// at a time. The worker threads come from a process-wide pool shared by the backends of the same thread count.
/// </summary>
public sealed unsafe partial class CpuBackend : ComputeBackend
{
    private const int MatMulBlockColumns = 64;
    private const int SmallWork = 1 << 14;

    private readonly CpuWorkerPool _pool;

    private readonly float** _packScratch;
    private readonly WorkerScratch* _scratch;
    private readonly Dictionary<nint, (int Half, int Positions, nint Data, float[] Frequencies)> _ropeTables = [];
    private readonly List<nint> _retiredTables = [];

    /// <summary>Creates a CPU backend using <paramref name="threads"/> threads (default: all cores).</summary>
    /// <exception cref="PlatformNotSupportedException">The processor lacks AVX2 and FMA.</exception>
    public CpuBackend(int? threads = null)
    {
        if (!Avx2.IsSupported || !Fma.IsSupported)
        {
            throw new PlatformNotSupportedException("The KvFusion CPU backend needs an x86-64 processor with AVX2 and FMA (x86-64-v3).");
        }

        var count = threads ?? Environment.ProcessorCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1, nameof(threads));
        _pool = CpuWorkerPool.Acquire(count);
        _packScratch = (float**)NativeMemory.AllocZeroed((nuint)(count * sizeof(float*)));
        _scratch = (WorkerScratch*)NativeMemory.AllocZeroed((nuint)(count * sizeof(WorkerScratch)));
        for (var i = 0; i < count; i++)
        {
            _packScratch[i] = (float*)NativeMemory.AlignedAlloc((nuint)(CpuGemm.PackScratchFloats(MatMulBlockColumns) * sizeof(float)), 64);
        }
    }

    /// <summary>Threads used by parallel operations.</summary>
    public int ThreadCount => _pool.ThreadCount;

    /// <summary>The shared worker pool this backend runs its parallel regions on.</summary>
    internal CpuWorkerPool Pool => _pool;

    /// <inheritdoc />
    public override string DeviceName => $"CPU ({ThreadCount} thread{(ThreadCount == 1 ? "" : "s")}, AVX2/FMA{(Avx512F.IsSupported ? ", AVX-512 present" : "")})";

    /// <inheritdoc />
    internal override DeviceTensor Allocate(TensorDType dtype, int rows, int cols) => CpuTensor.Allocate(dtype, rows, cols);

    /// <inheritdoc />
    internal override DeviceTensor CreateWeight(SafeTensor source, int rows, int cols)
    {
        using var op = Enter();

        if ((long)rows * cols != source.ElementCount)
        {
            throw new ModelLoadException($"Tensor '{source.Name}' has {source.ElementCount} elements; expected {rows}×{cols}.");
        }

        return CpuTensor.View(source.DType, rows, cols, source.Data);
    }

    /// <inheritdoc />
    internal override void Upload(ReadOnlySpan<float> source, DeviceTensor destination, int rowOffset)
    {
        using var op = Enter();

        var t = Check(destination, TensorDType.F32);
        BackendArguments.Range(t, rowOffset, source.Length);
        source.CopyTo(new Span<float>(t.F32 + ((long)rowOffset * t.Cols), source.Length));
    }

    /// <inheritdoc />
    internal override void Upload(ReadOnlySpan<int> source, DeviceTensor destination, int rowOffset)
    {
        using var op = Enter();

        var t = Check(destination, TensorDType.I32);
        BackendArguments.Range(t, rowOffset, source.Length);
        source.CopyTo(new Span<int>(t.I32 + ((long)rowOffset * t.Cols), source.Length));
    }

    /// <inheritdoc />
    internal override void Download(DeviceTensor source, int rowOffset, int rowCount, Span<float> destination)
    {
        using var op = Enter();

        var t = Check(source, TensorDType.F32);
        var count = (long)rowCount * t.Cols;
        BackendArguments.Range(t, rowOffset, count);
        if (destination.Length < count)
        {
            throw new ArgumentException($"Destination holds {destination.Length} floats; {count} needed.", nameof(destination));
        }

        new ReadOnlySpan<float>(t.F32 + ((long)rowOffset * t.Cols), (int)count).CopyTo(destination);
    }

    /// <inheritdoc />
    internal override void CopyRows(DeviceTensor source, int sourceRow, DeviceTensor destination, int destinationRow, int rowCount)
    {
        using var op = Enter();

        var s = Own(source);
        var d = Own(destination);
        if (s.DType != d.DType || s.Cols != d.Cols)
        {
            throw new ArgumentException("CopyRows needs tensors of the same dtype and width.");
        }

        BackendArguments.Range(s, sourceRow, (long)rowCount * s.Cols);
        BackendArguments.Range(d, destinationRow, (long)rowCount * d.Cols);
        var rowBytes = (long)s.Cols * s.DType.SizeInBytes();
        Buffer.MemoryCopy((byte*)s.Data + (sourceRow * rowBytes), (byte*)d.Data + (destinationRow * rowBytes), (d.Rows - destinationRow) * rowBytes, rowCount * rowBytes);
    }

    /// <inheritdoc />
    internal override void Embed(DeviceTensor table, DeviceTensor ids, int count, DeviceTensor output)
    {
        using var op = Enter();

        var tab = Own(table);
        var idx = Check(ids, TensorDType.I32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(o, count);
        if (o.Cols < tab.Cols)
        {
            throw new ArgumentException($"Embed: output rows of {o.Cols} cannot hold embeddings of {tab.Cols}.");
        }

        for (var i = 0; i < count; i++)
        {
            var id = idx.I32[i];
            if ((uint)id >= (uint)tab.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is outside the vocabulary of {tab.Rows}.");
            }

            HalfConversion.ToSingle(tab.Data, tab.DType, (long)id * tab.Cols, o.F32 + ((long)i * o.Cols), tab.Cols);
        }
    }

    /// <inheritdoc />
    internal override void RmsNorm(DeviceTensor x, int rows, DeviceTensor weight, float epsilon, DeviceTensor output)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        var w = Own(weight);
        BackendArguments.Rows(xs, rows);
        BackendArguments.Rows(o, rows);
        if (w.ElementCount < xs.Cols || o.Cols < xs.Cols)
        {
            throw new ArgumentException($"RmsNorm: {xs.Cols} columns need a weight of as many (it has {w.ElementCount}) and an output as wide (it has {o.Cols}).");
        }

        var job = new NormJob { X = xs.F32, Out = o.F32, W = w.Data, WType = w.DType, Cols = xs.Cols, Segment = xs.Cols, Eps = epsilon, Rows = rows };
        RunRows(rows, xs.Cols, &NormRows, &job);
    }

    /// <inheritdoc />
    internal override void RmsNormHeads(DeviceTensor x, int rows, int headDim, DeviceTensor weight, float epsilon)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var w = Own(weight);
        BackendArguments.Rows(xs, rows);
        var job = new NormJob { X = xs.F32, Out = xs.F32, W = w.Data, WType = w.DType, Cols = xs.Cols, Segment = headDim, Eps = epsilon, Rows = rows };
        RunRows(rows, xs.Cols, &NormRows, &job);
    }

    /// <inheritdoc />
    internal override void MatMul(DeviceTensor x, int rows, DeviceTensor weight, DeviceTensor? bias, DeviceTensor output, bool accumulate)
    {
        using var op = Enter();

        var a = Check(x, TensorDType.F32);
        var w = CheckFloat(weight, "weights");
        var c = Check(output, TensorDType.F32);
        var b = bias is null ? null : CheckFloat(bias, "bias");
        BackendArguments.MatMul(a, rows, w, b, c);
        if (b is not null)
        {
            for (var i = 0; i < rows; i++)
            {
                var row = c.F32 + ((long)i * c.Cols);
                if (accumulate)
                {
                    for (var j = 0; j < w.Rows; j++)
                    {
                        row[j] += HalfConversion.Load1(b.Data, b.DType, j);
                    }
                }
                else
                {
                    HalfConversion.ToSingle(b.Data, b.DType, 0, row, w.Rows);
                }
            }

            accumulate = true;
        }

        Gemm(a.F32, a.Cols, new CpuGemm.Operand(w.Data, w.DType, w.Cols, transposed: true), c.F32, c.Cols, rows, w.Rows, w.Cols, accumulate);
    }

    /// <summary>Parallel GEMM over the pool: C[m, n] (+)= A · op(B).</summary>
    internal void Gemm(float* a, long lda, CpuGemm.Operand b, float* c, long ldc, int m, int n, int k, bool accumulate)
    {
        var nb = MatMulBlockColumns;
        int mBlocks;
        if (m <= CpuGemm.GemvMaxRows)
        {
            mBlocks = 1;
            nb = Math.Max(16, (n + (4 * ThreadCount) - 1) / (4 * ThreadCount));
            nb = Math.Min(nb, 256);
        }
        else
        {
            mBlocks = (m + CpuGemm.MC - 1) / CpuGemm.MC;
            while (nb > 16 && mBlocks * ((n + nb - 1) / nb) < 3 * ThreadCount)
            {
                nb /= 2;
            }
        }

        var job = new GemmJob
        {
            A = a, Lda = lda, B = b, C = c, Ldc = ldc, M = m, N = n, K = k, Accumulate = accumulate,
            NBlock = nb, NBlocks = (n + nb - 1) / nb, MBlocks = mBlocks, Pack = _packScratch,
        };
        var tasks = job.NBlocks * mBlocks;
        if ((long)m * n * k < SmallWork)
        {
            for (var t = 0; t < tasks; t++)
            {
                GemmTask(&job, t, 0);
            }

            return;
        }

        _pool.Run(tasks, &GemmTask, &job);
    }

    /// <inheritdoc />
    internal override void ApplyRope(DeviceTensor x, int rows, int headDim, DeviceTensor positions, DeviceTensor inverseFrequencies, DeviceTensor output)
    {
        using var op = Enter();

        var xs = Check(x, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        var pos = Check(positions, TensorDType.I32);
        var inv = Check(inverseFrequencies, TensorDType.F32);
        BackendArguments.Rows(xs, rows);
        BackendArguments.Rows(o, rows);
        if (inv.ElementCount < headDim / 2 || xs.Cols % headDim != 0)
        {
            throw new ArgumentException("RoPE: inverse frequencies or head layout do not match the head dimension.");
        }

        var maxPosition = 0;
        for (var r = 0; r < rows; r++)
        {
            maxPosition = Math.Max(maxPosition, pos.I32[r]);
        }

        var table = RopeTableFor(inv, headDim / 2, maxPosition + 1);
        var job = new RopeJob
        {
            X = xs.F32, Out = o.F32, Cols = xs.Cols, OutCols = o.Cols, HeadDim = headDim, Positions = pos.I32, Inv = inv.F32, Rows = rows,
            Table = (float*)table.Data, TablePositions = table.Positions,
        };
        RunRows(rows, xs.Cols, &RopeRows, &job);
    }

    /// <inheritdoc />
    internal override void ImportHalfToCache(ReadOnlySpan<Half> source, int count, DeviceTensor cache, int kvHeads, int capacity, int firstSlot, DeviceTensor? positions, DeviceTensor? inverseFrequencies)
    {
        using var op = Enter();

        var c = Check(cache, TensorDType.F32);
        BackendArguments.HalfImport(source.Length, count, c, kvHeads, capacity, firstSlot, positions, inverseFrequencies);
        var pos = positions is null ? null : Check(positions, TensorDType.I32);
        var inv = inverseFrequencies is null ? null : Check(inverseFrequencies, TensorDType.F32);
        var hd = c.Cols;
        for (var h = 0; h < kvHeads; h++)
        {
            var dst = c.F32 + ((((long)h * capacity) + firstSlot) * hd);
            fixed (Half* src = source.Slice(h * count * hd, count * hd))
            {
                HalfConversion.ToSingle(src, TensorDType.F16, 0, dst, count * hd);
            }
        }

        if (pos is null || inv is null || count == 0)
        {
            return;
        }

        var maxPosition = 0;
        for (var r = 0; r < count; r++)
        {
            maxPosition = Math.Max(maxPosition, pos.I32[r]);
        }

        var table = RopeTableFor(inv, hd / 2, maxPosition + 1);
        for (var h = 0; h < kvHeads; h++)
        {
            var rows = c.F32 + ((((long)h * capacity) + firstSlot) * hd);
            var job = new RopeJob
            {
                X = rows, Out = rows, Cols = hd, OutCols = hd, HeadDim = hd, Positions = pos.I32, Inv = inv.F32, Rows = count,
                Table = (float*)table.Data, TablePositions = table.Positions,
            };
            RunRows(count, hd, &RopeRows, &job);
        }
    }

    /// <inheritdoc />
    internal override void SiluMultiply(DeviceTensor gate, DeviceTensor up, int rows, DeviceTensor output)
    {
        using var op = Enter();

        var g = Check(gate, TensorDType.F32);
        var u = Check(up, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        BackendArguments.Rows(g, rows);
        var job = new ElementwiseJob { A = g.F32, B = u.F32, Out = o.F32, Cols = g.Cols, Rows = rows, Kind = 0 };
        RunRows(rows, g.Cols, &ElementwiseRows, &job);
    }

    /// <inheritdoc />
    internal override void Add(DeviceTensor target, DeviceTensor source, int rows)
    {
        using var op = Enter();

        var t = Check(target, TensorDType.F32);
        var s = Check(source, TensorDType.F32);
        BackendArguments.Rows(t, rows);
        var job = new ElementwiseJob { A = t.F32, B = s.F32, Out = t.F32, Cols = t.Cols, Rows = rows, Kind = 1 };
        RunRows(rows, t.Cols, &ElementwiseRows, &job);
    }

    /// <inheritdoc />
    internal override void ScatterToCache(DeviceTensor source, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity)
    {
        using var op = Enter();

        var s = Check(source, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var c = Check(cache, TensorDType.F32);
        var hd = c.Cols;
        for (var i = 0; i < rows; i++)
        {
            var slot = sl.I32[i];
            if ((uint)slot >= (uint)capacity)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), $"Slot {slot} is outside the cache capacity {capacity}.");
            }

            for (var h = 0; h < kvHeads; h++)
            {
                Buffer.MemoryCopy(s.F32 + ((long)i * s.Cols) + (h * hd), c.F32 + ((((long)h * capacity) + slot) * hd), hd * sizeof(float), hd * sizeof(float));
            }
        }
    }

    /// <inheritdoc />
    internal override void GatherFromCache(DeviceTensor cache, int kvHeads, int capacity, DeviceTensor slots, int rows, DeviceTensor destination)
    {
        using var op = Enter();

        var c = Check(cache, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var d = Check(destination, TensorDType.F32);
        var hd = c.Cols;
        for (var i = 0; i < rows; i++)
        {
            var slot = sl.I32[i];
            if ((uint)slot >= (uint)capacity)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), $"Slot {slot} is outside the cache capacity {capacity}.");
            }

            for (var h = 0; h < kvHeads; h++)
            {
                Buffer.MemoryCopy(c.F32 + ((((long)h * capacity) + slot) * hd), d.F32 + ((long)i * d.Cols) + (h * hd), hd * sizeof(float), hd * sizeof(float));
            }
        }
    }

    /// <inheritdoc />
    internal override void GatherRows(DeviceTensor source, DeviceTensor indices, int count, DeviceTensor destination)
    {
        using var op = Enter();

        var s = Own(source);
        var idx = Check(indices, TensorDType.I32);
        var d = Own(destination);
        if (s.DType != d.DType || s.Cols != d.Cols)
        {
            throw new ArgumentException("GatherRows needs tensors of the same dtype and width.");
        }

        BackendArguments.Rows(d, count);
        var rowBytes = (long)s.Cols * s.DType.SizeInBytes();
        for (var i = 0; i < count; i++)
        {
            var r = idx.I32[i];
            if ((uint)r >= (uint)s.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), $"Row {r} is outside a tensor of {s.Rows} rows.");
            }

            Buffer.MemoryCopy((byte*)s.Data + (r * rowBytes), (byte*)d.Data + (i * rowBytes), rowBytes, rowBytes);
        }
    }

    /// <inheritdoc />
    internal override void CacheDeviation(DeviceTensor fresh, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity, DeviceTensor output)
    {
        using var op = Enter();

        var f = Check(fresh, TensorDType.F32);
        var sl = Check(slots, TensorDType.I32);
        var c = Check(cache, TensorDType.F32);
        var o = Check(output, TensorDType.F32);
        var hd = c.Cols;
        for (var i = 0; i < rows; i++)
        {
            var slot = sl.I32[i];
            if ((uint)slot >= (uint)capacity)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), $"Slot {slot} is outside the cache capacity {capacity}.");
            }

            var sum = 0f;
            for (var h = 0; h < kvHeads; h++)
            {
                var a = f.F32 + ((long)i * f.Cols) + (h * hd);
                var b = c.F32 + ((((long)h * capacity) + slot) * hd);
                for (var d = 0; d < hd; d++)
                {
                    var diff = a[d] - b[d];
                    sum += diff * diff;
                }
            }

            o.F32[i] = sum;
        }
    }

    /// <inheritdoc />
    internal override void SelectTopK(DeviceTensor scores, int count, int k, DeviceTensor indices)
    {
        using var op = Enter();

        var s = Check(scores, TensorDType.F32);
        var o = Check(indices, TensorDType.I32);
        BackendArguments.TopK(s, count, k, o);
        if (k == 0)
        {
            return;
        }

        // One sortable key per row: high word the descending score order, low word the row, so ties go to the lower row.
        var keys = System.Buffers.ArrayPool<ulong>.Shared.Rent(count);
        try
        {
            var values = s.F32;
            for (var i = 0; i < count; i++)
            {
                keys[i] = ((ulong)~OrderKey(values[i]) << 32) | (uint)i;
            }

            keys.AsSpan(0, count).Sort();
            var selected = new Span<int>(o.I32, k);
            for (var i = 0; i < k; i++)
            {
                selected[i] = (int)(uint)keys[i];
            }

            selected.Sort();
        }
        finally
        {
            System.Buffers.ArrayPool<ulong>.Shared.Return(keys);
        }
    }

    /// <summary>Maps a float to an unsigned key with the float order; NaN maps below every number.</summary>
    internal static uint OrderKey(float value)
    {
        if (float.IsNaN(value))
        {
            return 0;
        }

        var u = BitConverter.SingleToUInt32Bits(value);
        return (u & 0x80000000u) != 0 ? ~u : u | 0x80000000u;
    }

    /// <inheritdoc />
    internal override void Synchronize()
    {
        using var op = Enter();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        _pool.Dispose();
        for (var i = 0; i < ThreadCount; i++)
        {
            NativeMemory.AlignedFree(_packScratch[i]);
            _scratch[i].Free();
        }

        NativeMemory.Free(_packScratch);
        NativeMemory.Free(_scratch);
        foreach (var t in _ropeTables.Values)
        {
            NativeMemory.AlignedFree((void*)t.Data);
        }

        foreach (var d in _retiredTables)
        {
            NativeMemory.AlignedFree((void*)d);
        }
    }

    private static CpuTensor Own(DeviceTensor t) => t as CpuTensor ?? throw new ArgumentException("The tensor belongs to another backend.");

    /// <summary>A weight or bias: a CPU tensor of a floating-point dtype the kernels read.</summary>
    private static CpuTensor CheckFloat(DeviceTensor t, string role)
    {
        var c = Own(t);
        return c.DType is TensorDType.F32 or TensorDType.F16 or TensorDType.BF16
            ? c
            : throw new ArgumentException($"MatMul {role} must be F32, F16 or BF16, not {c.DType}.");
    }

    private static CpuTensor Check(DeviceTensor t, TensorDType dtype)
    {
        var c = Own(t);
        return c.DType == dtype ? c : throw new ArgumentException($"Expected a {dtype} tensor, got {c.DType}.");
    }

    /// <summary>Runs a row-parallel job: serially when small, else in chunks over the pool.</summary>
    private void RunRows(int rows, int cols, delegate*<void*, int, int, void> fn, void* job)
    {
        var hdr = (RowJobHeader*)job;
        if ((long)rows * cols < SmallWork || ThreadCount == 1)
        {
            hdr->RowsPerTask = rows;
            fn(job, 0, 0);
            return;
        }

        var tasks = Math.Min(rows, 4 * ThreadCount);
        hdr->RowsPerTask = (rows + tasks - 1) / tasks;
        _pool.Run((rows + hdr->RowsPerTask - 1) / hdr->RowsPerTask, fn, job);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RowJobHeader
    {
        public int RowsPerTask;
        public int Rows;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct NormJob
    {
        public int RowsPerTask;
        public int Rows;
        public float* X;
        public float* Out;
        public void* W;
        public TensorDType WType;
        public int Cols;
        public int Segment;
        public float Eps;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RopeJob
    {
        public int RowsPerTask;
        public int Rows;
        public float* X;
        public float* Out;
        public int Cols;
        public int OutCols;
        public int HeadDim;
        public int* Positions;
        public float* Inv;
        public float* Table;
        public int TablePositions;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ElementwiseJob
    {
        public int RowsPerTask;
        public int Rows;
        public float* A;
        public float* B;
        public float* Out;
        public int Cols;
        public int Kind;
    }

    private struct GemmJob
    {
        public float* A;
        public long Lda;
        public CpuGemm.Operand B;
        public float* C;
        public long Ldc;
        public int M;
        public int N;
        public int K;
        public bool Accumulate;
        public int NBlock;
        public int NBlocks;
        public int MBlocks;
        public float** Pack;
    }

    private static void GemmTask(void* state, int task, int worker)
    {
        var j = (GemmJob*)state;
        var nBlock = task % j->NBlocks;
        var mBlock = task / j->NBlocks;
        var n0 = nBlock * j->NBlock;
        var nb = Math.Min(j->NBlock, j->N - n0);
        var m0 = mBlock * CpuGemm.MC;
        var mc = j->MBlocks == 1 ? j->M : Math.Min(CpuGemm.MC, j->M - m0);
        var pack = j->Pack[worker];
        for (var sub = 0; sub < nb; sub += MatMulBlockColumns)
        {
            var width = Math.Min(MatMulBlockColumns, nb - sub);
            CpuGemm.Serial(j->A + (m0 * j->Lda), j->Lda, j->B, j->C + (m0 * j->Ldc), j->Ldc, mc, n0 + sub, width, j->K, j->Accumulate, pack);
        }
    }

    private static void NormRows(void* state, int task, int worker)
    {
        var j = (NormJob*)state;
        var r0 = task * j->RowsPerTask;
        var r1 = Math.Min(j->Rows, r0 + j->RowsPerTask);
        var seg = j->Segment;
        var w = stackalloc float[seg];
        HalfConversion.ToSingle(j->W, j->WType, 0, w, seg);
        for (var r = r0; r < r1; r++)
        {
            for (var s0 = 0; s0 < j->Cols; s0 += seg)
            {
                var x = j->X + ((long)r * j->Cols) + s0;
                var o = j->Out + ((long)r * j->Cols) + s0;
                var sum = Vector256<float>.Zero;
                var i = 0;
                for (; i <= seg - 8; i += 8)
                {
                    var v = Avx.LoadVector256(x + i);
                    sum = Fma.MultiplyAdd(v, v, sum);
                }

                var ss = Vector256.Sum(sum);
                for (; i < seg; i++)
                {
                    ss += x[i] * x[i];
                }

                var scale = 1f / MathF.Sqrt((ss / seg) + j->Eps);
                var vs = Vector256.Create(scale);
                i = 0;
                for (; i <= seg - 8; i += 8)
                {
                    // transformers: weight * (x * rsqrt(mean(x²) + eps)), in float32.
                    (Avx.LoadVector256(w + i) * (Avx.LoadVector256(x + i) * vs)).Store(o + i);
                }

                for (; i < seg; i++)
                {
                    o[i] = w[i] * (x[i] * scale);
                }
            }
        }
    }

    private static void RopeRows(void* state, int task, int worker)
    {
        var j = (RopeJob*)state;
        var r0 = task * j->RowsPerTask;
        var r1 = Math.Min(j->Rows, r0 + j->RowsPerTask);
        var half = j->HeadDim / 2;
        var cosBuffer = stackalloc float[half];
        var sinBuffer = stackalloc float[half];
        for (var r = r0; r < r1; r++)
        {
            var p = j->Positions[r];
            float* cos, sin;
            if ((uint)p < (uint)j->TablePositions)
            {
                cos = j->Table + ((long)p * 2 * half);
                sin = cos + half;
            }
            else
            {
                cos = cosBuffer;
                sin = sinBuffer;
                RopeAngles(p, j->Inv, half, cos, sin);
            }

            var x = j->X + ((long)r * j->Cols);
            var o = j->Out + ((long)r * j->OutCols);
            for (var h = 0; h < j->Cols; h += j->HeadDim)
            {
                var xh = x + h;
                var oh = o + h;
                for (var i = 0; i < half; i++)
                {
                    var a = xh[i];
                    var b = xh[i + half];
                    oh[i] = (a * cos[i]) - (b * sin[i]);
                    oh[i + half] = (b * cos[i]) + (a * sin[i]);
                }
            }
        }
    }

    /// <summary>cos and sin of position × inverse frequency, in float32 as transformers computes them.</summary>
    private static void RopeAngles(int position, float* inv, int half, float* cos, float* sin)
    {
        var pos = (float)position;
        for (var i = 0; i < half; i++)
        {
            var angle = pos * inv[i];
            cos[i] = MathF.Cos(angle);
            sin[i] = MathF.Sin(angle);
        }
    }

    /// <summary>
    /// cos/sin rows for positions [0, n) of one set of inverse frequencies, grown on demand: RoPE runs on every
    /// layer's q and k and on every stored chunk that is loaded, always at the same positions.
    /// </summary>
    private (nint Data, int Positions) RopeTableFor(CpuTensor inv, int half, int needed)
    {
        lock (_ropeTables)
        {
            var key = (nint)inv.Data;
            var frequencies = new ReadOnlySpan<float>(inv.F32, half);
            if (_ropeTables.TryGetValue(key, out var t) && t.Positions >= needed && t.Half == half && frequencies.SequenceEqual(t.Frequencies))
            {
                return (t.Data, t.Positions);
            }

            var positions = Math.Max(needed, Math.Max(t.Frequencies is null ? 0 : t.Positions * 2, 1024));
            var data = (float*)NativeMemory.AlignedAlloc((nuint)((long)positions * 2 * half * sizeof(float)), 64);
            for (var p = 0; p < positions; p++)
            {
                var row = data + ((long)p * 2 * half);
                RopeAngles(p, inv.F32, half, row, row + half);
            }

            if (t.Data != 0)
            {
                _retiredTables.Add(t.Data);
            }

            _ropeTables[key] = (half, positions, (nint)data, frequencies.ToArray());
            return ((nint)data, positions);
        }
    }

    private static void ElementwiseRows(void* state, int task, int worker)
    {
        var j = (ElementwiseJob*)state;
        var r0 = task * j->RowsPerTask;
        var r1 = Math.Min(j->Rows, r0 + j->RowsPerTask);
        var n = (long)(r1 - r0) * j->Cols;
        var a = j->A + ((long)r0 * j->Cols);
        var b = j->B + ((long)r0 * j->Cols);
        var o = j->Out + ((long)r0 * j->Cols);
        long i = 0;
        if (j->Kind == 0)
        {
            for (; i <= n - 8; i += 8)
            {
                var g = Avx.LoadVector256(a + i);
                var silu = g / (Vector256.Create(1f) + VectorMath.Exp(-g));
                (silu * Avx.LoadVector256(b + i)).Store(o + i);
            }

            for (; i < n; i++)
            {
                var g = a[i];
                o[i] = g / (1f + MathF.Exp(-g)) * b[i];
            }
        }
        else
        {
            for (; i <= n - 8; i += 8)
            {
                (Avx.LoadVector256(a + i) + Avx.LoadVector256(b + i)).Store(o + i);
            }

            for (; i < n; i++)
            {
                o[i] = a[i] + b[i];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EnsureCapacity(ref float* buffer, ref long capacity, long needed)
    {
        if (capacity >= needed)
        {
            return;
        }

        if (buffer != null)
        {
            NativeMemory.AlignedFree(buffer);
        }

        var size = Math.Max(needed, capacity * 2);
        buffer = (float*)NativeMemory.AlignedAlloc((nuint)(size * sizeof(float)), 64);
        capacity = size;
    }

    private struct WorkerScratch
    {
        public float* Scores;
        public long ScoresCapacity;
        public float* Pack;
        public long PackCapacity;
        public float* KeyWeights;
        public long KeyWeightsCapacity;

        public void Free()
        {
            if (Scores != null) NativeMemory.AlignedFree(Scores);
            if (Pack != null) NativeMemory.AlignedFree(Pack);
            if (KeyWeights != null) NativeMemory.AlignedFree(KeyWeights);
            this = default;
        }
    }
}
