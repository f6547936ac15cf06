using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Query rows one attention task computes (a row's kernels depend on its block's size).</summary>
    internal const int AttentionRowBlock = 48;

    /// <inheritdoc />
    internal override void Attention(in AttentionArguments arguments)
    {
        using var op = Enter();

        var args = arguments;
        var q = Check(args.Query, TensorDType.F32);
        var qpos = Check(args.QueryPositions, TensorDType.I32);
        var kc = Check(args.KeyCache, TensorDType.F32);
        var vc = Check(args.ValueCache, TensorDType.F32);
        var kpos = Check(args.KeyPositions, TensorDType.I32);
        var o = Check(args.Output, TensorDType.F32);
        args.Validate();

        var keyWeights = args.AttentionToKeys is null ? null : Check(args.AttentionToKeys, TensorDType.F32);
        var blocks = (args.Rows + AttentionRowBlock - 1) / AttentionRowBlock;
        var job = new AttentionJob
        {
            Q = q.F32, Ldq = q.Cols, QPos = qpos.I32, K = kc.F32, V = vc.F32, KPos = kpos.I32, KeyCount = args.KeyCount,
            Capacity = args.Capacity, Heads = args.HeadCount, Group = args.HeadCount / args.KvHeadCount, HeadDim = args.HeadDim,
            Scale = args.Scale, O = o.F32, Ldo = o.Cols, Rows = args.Rows, Blocks = blocks, Scratch = _scratch,
            WantKeyWeights = keyWeights is not null,
        };
        if (keyWeights is not null)
        {
            for (var w = 0; w < ThreadCount; w++)
            {
                EnsureCapacity(ref _scratch[w].KeyWeights, ref _scratch[w].KeyWeightsCapacity, args.Capacity);
                new Span<float>(_scratch[w].KeyWeights, args.Capacity).Clear();
            }
        }

        var tasks = blocks * args.HeadCount;
        if ((long)args.Rows * args.KeyCount * args.HeadCount * args.HeadDim < SmallWork)
        {
            for (var t = 0; t < tasks; t++)
            {
                AttentionTask(&job, t, 0);
            }
        }
        else
        {
            _pool.Run(tasks, &AttentionTask, &job);
        }

        if (keyWeights is not null)
        {
            var dst = keyWeights.F32;
            new Span<float>(dst, Math.Min(keyWeights.Rows, args.Capacity)).Clear();
            for (var w = 0; w < ThreadCount; w++)
            {
                var src = _scratch[w].KeyWeights;
                for (var s = 0; s < args.KeyCount; s++)
                {
                    dst[s] += src[s];
                }
            }
        }
    }

    private struct AttentionJob
    {
        public float* Q;
        public long Ldq;
        public int* QPos;
        public float* K;
        public float* V;
        public int* KPos;
        public int KeyCount;
        public int Capacity;
        public int Heads;
        public int Group;
        public int HeadDim;
        public float Scale;
        public float* O;
        public long Ldo;
        public int Rows;
        public int Blocks;
        public WorkerScratch* Scratch;
        public bool WantKeyWeights;
    }

    /// <summary>Number of slots whose key position is ≤ <paramref name="position"/> (positions are non-decreasing by slot).</summary>
    private static int VisibleKeys(int* keyPositions, int keyCount, int position)
    {
        int lo = 0, hi = keyCount;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keyPositions[mid] <= position)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static void AttentionTask(void* state, int task, int worker)
    {
        var j = (AttentionJob*)state;
        var head = task % j->Heads;
        var block = task / j->Heads;
        var r0 = block * AttentionRowBlock;
        var rb = Math.Min(AttentionRowBlock, j->Rows - r0);
        var kvHead = head / j->Group;
        var hd = j->HeadDim;
        var keys = j->K + ((long)kvHead * j->Capacity * hd);
        var values = j->V + ((long)kvHead * j->Capacity * hd);
        var maxPos = int.MinValue;
        for (var r = 0; r < rb; r++)
        {
            maxPos = Math.Max(maxPos, j->QPos[r0 + r]);
        }

        var n = VisibleKeys(j->KPos, j->KeyCount, maxPos);
        var s = &j->Scratch[worker];
        var ldS = (n + 15) & ~15;
        EnsureCapacity(ref s->Scores, ref s->ScoresCapacity, (long)rb * Math.Max(ldS, 16));
        var scores = s->Scores;
        var q = j->Q + (r0 * j->Ldq) + (head * hd);
        var o = j->O + (r0 * j->Ldo) + (head * hd);

        if (n == 0)
        {
            for (var r = 0; r < rb; r++)
            {
                new Span<float>(o + (r * j->Ldo), hd).Clear();
            }

            return;
        }

        if (rb <= CpuGemm.GemvMaxRows)
        {
            for (var r = 0; r < rb; r++)
            {
                DotKeys(q + (r * j->Ldq), keys, hd, n, scores + (r * ldS));
            }
        }
        else
        {
            EnsureCapacity(ref s->Pack, ref s->PackCapacity, CpuGemm.PackScratchFloats(ldS));
            CpuGemm.Serial(q, j->Ldq, new CpuGemm.Operand(keys, TensorDType.F32, hd, transposed: true), scores, ldS, rb, 0, n, hd, accumulate: false, s->Pack);
        }

        for (var r = 0; r < rb; r++)
        {
            var visible = VisibleKeys(j->KPos, n, j->QPos[r0 + r]);
            Softmax(scores + (r * ldS), visible, n, j->Scale);
            if (j->WantKeyWeights)
            {
                var acc = s->KeyWeights;
                var row = scores + (r * ldS);
                for (var k = 0; k < visible; k++)
                {
                    acc[k] += row[k];
                }
            }
        }

        if (rb <= CpuGemm.GemvMaxRows)
        {
            for (var r = 0; r < rb; r++)
            {
                WeightedValues(scores + (r * ldS), values, hd, n, o + (r * j->Ldo));
            }
        }
        else
        {
            EnsureCapacity(ref s->Pack, ref s->PackCapacity, CpuGemm.PackScratchFloats(hd));
            CpuGemm.Serial(scores, ldS, new CpuGemm.Operand(values, TensorDType.F32, hd, transposed: false), o, j->Ldo, rb, 0, hd, n, accumulate: false, s->Pack);
        }
    }

    /// <summary>scores[i] = q · keys[i] for i &lt; n.</summary>
    private static void DotKeys(float* q, float* keys, int hd, int n, float* scores)
    {
        if (hd % 8 != 0)
        {
            for (var i = 0; i < n; i++)
            {
                var sum = 0f;
                for (var d = 0; d < hd; d++)
                {
                    sum += q[d] * keys[((long)i * hd) + d];
                }

                scores[i] = sum;
            }

            return;
        }

        for (var i = 0; i < n; i++)
        {
            var k = keys + ((long)i * hd);
            var acc = Vector256<float>.Zero;
            for (var d = 0; d < hd; d += 8)
            {
                acc = Fma.MultiplyAdd(Avx.LoadVector256(q + d), Avx.LoadVector256(k + d), acc);
            }

            scores[i] = Vector256.Sum(acc);
        }
    }

    /// <summary>o = Σ p[i] · values[i] over i &lt; n.</summary>
    private static void WeightedValues(float* p, float* values, int hd, int n, float* o)
    {
        new Span<float>(o, hd).Clear();
        if (hd % 8 != 0)
        {
            for (var i = 0; i < n; i++)
            {
                for (var d = 0; d < hd; d++)
                {
                    o[d] += p[i] * values[((long)i * hd) + d];
                }
            }

            return;
        }

        for (var d = 0; d < hd; d += 8)
        {
            var acc = Vector256<float>.Zero;
            for (var i = 0; i < n; i++)
            {
                acc = Fma.MultiplyAdd(Vector256.Create(p[i]), Avx.LoadVector256(values + ((long)i * hd) + d), acc);
            }

            acc.Store(o + d);
        }
    }

    /// <summary>In place: softmax(scale · row[0..visible)); entries [visible, n) become 0.</summary>
    private static void Softmax(float* row, int visible, int n, float scale)
    {
        var max = float.NegativeInfinity;
        for (var i = 0; i < visible; i++)
        {
            max = MathF.Max(max, row[i]);
        }

        var sum = 0f;
        var i8 = 0;
        var vmax = Vector256.Create(max * scale);
        var vscale = Vector256.Create(scale);
        var vsum = Vector256<float>.Zero;
        for (; i8 <= visible - 8; i8 += 8)
        {
            var e = VectorMath.Exp(Fma.MultiplySubtract(Avx.LoadVector256(row + i8), vscale, vmax));
            e.Store(row + i8);
            vsum += e;
        }

        sum = Vector256.Sum(vsum);
        for (; i8 < visible; i8++)
        {
            var e = MathF.Exp((row[i8] * scale) - (max * scale));
            row[i8] = e;
            sum += e;
        }

        var inv = 1f / sum;
        var vinv = Vector256.Create(inv);
        var k = 0;
        for (; k <= visible - 8; k += 8)
        {
            (Avx.LoadVector256(row + k) * vinv).Store(row + k);
        }

        for (; k < visible; k++)
        {
            row[k] *= inv;
        }

        for (var z = visible; z < n; z++)
        {
            row[z] = 0f;
        }
    }
}
