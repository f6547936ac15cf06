using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// Single-precision GEMM for the CPU backend: C[m, n] (+)= A[m, k] · op(B), with A float32 and B float32, fp16 or
/// bf16, either stored [n, k] (weights and keys: C = A·Bᵀ) or [k, n] (values: C = A·B). B is converted and packed
/// into 16-column panels per k-block (so weights stay in their stored dtype in memory) and a 6×16 register-blocked
/// FMA kernel runs over them. Few-row products (decode) take a GEMV path that streams B once, two columns at a time
/// (converted once to float32 and prefetched when several rows share them).
/// </summary>
internal static unsafe class CpuGemm
{
    public const int MR = 6;
    public const int NR = 16;
    public const int KC = 256;
    public const int MC = 192;

    /// <summary>Rows up to which the streaming GEMV path is used instead of packing.</summary>
    public const int GemvMaxRows = 24;

    /// <summary>Floats of packing scratch one serial call needs for a panel block of <paramref name="nb"/> columns.</summary>
    public static int PackScratchFloats(int nb) => KC * (((nb + NR - 1) / NR) * NR);

    /// <summary>Describes op(B).</summary>
    public readonly struct Operand(void* data, TensorDType dtype, long ld, bool transposed)
    {
        public readonly void* Data = data;
        public readonly TensorDType DType = dtype;
        public readonly long Ld = ld;

        /// <summary>True when B is stored [n, k] (C = A·Bᵀ).</summary>
        public readonly bool Transposed = transposed;
    }

    /// <summary>
    /// Serial GEMM over rows [0, m) and columns [n0, n0 + nb) of C. <paramref name="pack"/> must hold
    /// <see cref="PackScratchFloats"/>(nb) floats.
    /// </summary>
    public static void Serial(float* a, long lda, in Operand b, float* c, long ldc, int m, int n0, int nb, int k, bool accumulate, float* pack)
    {
        if (m <= 0 || nb <= 0)
        {
            return;
        }

        if (k == 0)
        {
            if (!accumulate)
            {
                for (var i = 0; i < m; i++)
                {
                    new Span<float>(c + (i * ldc) + n0, nb).Clear();
                }
            }

            return;
        }

        if (m <= GemvMaxRows && b.Transposed)
        {
            Gemv(a, lda, b, c, ldc, m, n0, nb, k, accumulate);
            return;
        }

        var panels = (nb + NR - 1) / NR;
        for (var k0 = 0; k0 < k; k0 += KC)
        {
            var kc = Math.Min(KC, k - k0);
            PackB(b, n0, nb, k0, kc, pack);
            var load = accumulate || k0 > 0;
            for (var i0 = 0; i0 < m; i0 += MR)
            {
                var mr = Math.Min(MR, m - i0);
                var arow = a + (i0 * lda) + k0;
                for (var p = 0; p < panels; p++)
                {
                    var nr = Math.Min(NR, nb - (p * NR));
                    Kernel6x16(kc, arow, lda, pack + (p * NR * kc), c + (i0 * ldc) + n0 + (p * NR), ldc, mr, nr, load);
                }
            }
        }
    }

    /// <summary>Packs B's columns [n0, n0+nb) and depth [k0, k0+kc) as float32 panels of NR columns: panel[p][kk][j].</summary>
    private static void PackB(in Operand b, int n0, int nb, int k0, int kc, float* pack)
    {
        var panels = (nb + NR - 1) / NR;
        for (var p = 0; p < panels; p++)
        {
            var dst = pack + (p * NR * kc);
            var j0 = n0 + (p * NR);
            var nr = Math.Min(NR, nb - (p * NR));
            if (b.Transposed)
            {
                PackTransposedPanel(b, j0, nr, k0, kc, dst);
            }
            else
            {
                // B is [k, n]: each depth step is a contiguous run of columns.
                for (var kk = 0; kk < kc; kk++)
                {
                    var src = (k0 + kk) * b.Ld + j0;
                    var d = dst + (kk * NR);
                    if (nr == NR)
                    {
                        HalfConversion.Load8(b.Data, b.DType, src).Store(d);
                        HalfConversion.Load8(b.Data, b.DType, src + 8).Store(d + 8);
                    }
                    else
                    {
                        for (var j = 0; j < NR; j++)
                        {
                            d[j] = j < nr ? HalfConversion.Load1(b.Data, b.DType, src + j) : 0f;
                        }
                    }
                }
            }
        }
    }

    /// <summary>B rows j0..j0+nr (each contiguous along k) into dst[kk*NR + j], via 8×8 register transposes.</summary>
    private static void PackTransposedPanel(in Operand b, int j0, int nr, int k0, int kc, float* dst)
    {
        var kk = 0;
        if (nr == NR)
        {
            for (; kk <= kc - 8; kk += 8)
            {
                for (var half = 0; half < 2; half++)
                {
                    var rowBase = ((long)(j0 + (half * 8)) * b.Ld) + k0 + kk;
                    var r0 = HalfConversion.Load8(b.Data, b.DType, rowBase);
                    var r1 = HalfConversion.Load8(b.Data, b.DType, rowBase + b.Ld);
                    var r2 = HalfConversion.Load8(b.Data, b.DType, rowBase + (2 * b.Ld));
                    var r3 = HalfConversion.Load8(b.Data, b.DType, rowBase + (3 * b.Ld));
                    var r4 = HalfConversion.Load8(b.Data, b.DType, rowBase + (4 * b.Ld));
                    var r5 = HalfConversion.Load8(b.Data, b.DType, rowBase + (5 * b.Ld));
                    var r6 = HalfConversion.Load8(b.Data, b.DType, rowBase + (6 * b.Ld));
                    var r7 = HalfConversion.Load8(b.Data, b.DType, rowBase + (7 * b.Ld));
                    Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    var d = dst + (kk * NR) + (half * 8);
                    r0.Store(d);
                    r1.Store(d + NR);
                    r2.Store(d + (2 * NR));
                    r3.Store(d + (3 * NR));
                    r4.Store(d + (4 * NR));
                    r5.Store(d + (5 * NR));
                    r6.Store(d + (6 * NR));
                    r7.Store(d + (7 * NR));
                }
            }
        }

        for (; kk < kc; kk++)
        {
            var d = dst + (kk * NR);
            for (var j = 0; j < NR; j++)
            {
                d[j] = j < nr ? HalfConversion.Load1(b.Data, b.DType, ((long)(j0 + j) * b.Ld) + k0 + kk) : 0f;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(
        ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44);
        var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44);
        var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44);
        var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44);
        var s7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(s0, s4, 0x20);
        r1 = Avx.Permute2x128(s1, s5, 0x20);
        r2 = Avx.Permute2x128(s2, s6, 0x20);
        r3 = Avx.Permute2x128(s3, s7, 0x20);
        r4 = Avx.Permute2x128(s0, s4, 0x31);
        r5 = Avx.Permute2x128(s1, s5, 0x31);
        r6 = Avx.Permute2x128(s2, s6, 0x31);
        r7 = Avx.Permute2x128(s3, s7, 0x31);
    }

    /// <summary>The 6×16 FMA kernel over a packed panel; rows past <paramref name="mr"/> and columns past <paramref name="nr"/> are computed on clamped inputs and not stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, long lda, float* bp, float* c, long ldc, int mr, int nr, bool load)
    {
        var a0 = a;
        var a1 = mr > 1 ? a + lda : a;
        var a2 = mr > 2 ? a + (2 * lda) : a;
        var a3 = mr > 3 ? a + (3 * lda) : a;
        var a4 = mr > 4 ? a + (4 * lda) : a;
        var a5 = mr > 5 ? a + (5 * lda) : a;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (var p = 0; p < kc; p++)
        {
            var b0 = Avx.LoadVector256(bp);
            var b1 = Avx.LoadVector256(bp + 8);
            bp += NR;
            var v = Vector256.Create(a0[p]);
            c00 = Fma.MultiplyAdd(v, b0, c00);
            c01 = Fma.MultiplyAdd(v, b1, c01);
            v = Vector256.Create(a1[p]);
            c10 = Fma.MultiplyAdd(v, b0, c10);
            c11 = Fma.MultiplyAdd(v, b1, c11);
            v = Vector256.Create(a2[p]);
            c20 = Fma.MultiplyAdd(v, b0, c20);
            c21 = Fma.MultiplyAdd(v, b1, c21);
            v = Vector256.Create(a3[p]);
            c30 = Fma.MultiplyAdd(v, b0, c30);
            c31 = Fma.MultiplyAdd(v, b1, c31);
            v = Vector256.Create(a4[p]);
            c40 = Fma.MultiplyAdd(v, b0, c40);
            c41 = Fma.MultiplyAdd(v, b1, c41);
            v = Vector256.Create(a5[p]);
            c50 = Fma.MultiplyAdd(v, b0, c50);
            c51 = Fma.MultiplyAdd(v, b1, c51);
        }

        if (nr == NR)
        {
            StoreRow(c, load, c00, c01);
            if (mr > 1) StoreRow(c + ldc, load, c10, c11);
            if (mr > 2) StoreRow(c + (2 * ldc), load, c20, c21);
            if (mr > 3) StoreRow(c + (3 * ldc), load, c30, c31);
            if (mr > 4) StoreRow(c + (4 * ldc), load, c40, c41);
            if (mr > 5) StoreRow(c + (5 * ldc), load, c50, c51);
            return;
        }

        var tmp = stackalloc float[MR * NR];
        c00.Store(tmp); c01.Store(tmp + 8);
        c10.Store(tmp + 16); c11.Store(tmp + 24);
        c20.Store(tmp + 32); c21.Store(tmp + 40);
        c30.Store(tmp + 48); c31.Store(tmp + 56);
        c40.Store(tmp + 64); c41.Store(tmp + 72);
        c50.Store(tmp + 80); c51.Store(tmp + 88);
        for (var i = 0; i < mr; i++)
        {
            var row = c + (i * ldc);
            for (var j = 0; j < nr; j++)
            {
                row[j] = load ? row[j] + tmp[(i * NR) + j] : tmp[(i * NR) + j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, bool load, Vector256<float> v0, Vector256<float> v1)
    {
        if (load)
        {
            v0 += Avx.LoadVector256(c);
            v1 += Avx.LoadVector256(c + 8);
        }

        v0.Store(c);
        v1.Store(c + 8);
    }

    /// <summary>Few rows against B stored [n, k]: each B row is streamed once and dotted with every A row.</summary>
    private static void Gemv(float* a, long lda, in Operand b, float* c, long ldc, int m, int n0, int nb, int k, bool accumulate)
    {
        switch (b.DType)
        {
            case TensorDType.F16:
                Gemv<F16Weights>(a, lda, b.Data, b.Ld, c, ldc, m, n0, nb, k, accumulate);
                break;
            case TensorDType.BF16:
                Gemv<BF16Weights>(a, lda, b.Data, b.Ld, c, ldc, m, n0, nb, k, accumulate);
                break;
            default:
                Gemv<F32Weights>(a, lda, b.Data, b.Ld, c, ldc, m, n0, nb, k, accumulate);
                break;
        }
    }

    /// <summary>
    /// Rows from which a column pair is converted to float32 once (and the next pairs prefetched) rather than
    /// converted per row group.
    /// </summary>
    private const int ConvertOnceRows = 2;

    /// <summary>Longest row a column pair is converted for, on the stack (2 × 8192 floats).</summary>
    private const int ConvertOnceMaxDepth = 8192;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gemv<T>(float* a, long lda, void* w, long ldw, float* c, long ldc, int m, int n0, int nb, int k, bool accumulate)
        where T : struct, IWeightLoader
    {
        if (!Avx512F.IsSupported)
        {
            GemvColumns<T>(a, lda, w, ldw, c, ldc, m, n0, nb, k, accumulate);
            return;
        }

        var end = n0 + nb;
        var j = n0;

        // Weights of a column pair converted once serve every row (the conversion is exact, so results are the same
        // bits as converting per row group).
        var convert = typeof(T) != typeof(F32Weights) && m >= ConvertOnceRows && k <= ConvertOnceMaxDepth;
        var pair = convert ? stackalloc float[2 * k] : default;
        fixed (float* pp = pair)
        {
            for (; j + 2 <= end; j += 2)
            {
                var rowA = (long)j * ldw;
                var rowB = rowA + ldw;
                if (convert)
                {
                    ToFloat<T>(w, rowA, pp, k, 4 * ldw);
                    ToFloat<T>(w, rowB, pp + k, k, 4 * ldw);
                    GemvPair<F32Weights>(a, lda, pp, 0, k, c + j, ldc, m, k, accumulate);
                }
                else
                {
                    // One row streams weights fast enough for the hardware prefetcher; more rows compute longer
                    // between loads and would stall on DRAM without this.
                    if (m >= ConvertOnceRows)
                    {
                        Prefetch<T>(w, rowA + (4 * ldw), 2 * k);
                    }

                    GemvPair<T>(a, lda, w, rowA, rowB, c + j, ldc, m, k, accumulate);
                }
            }
        }

        GemvColumns<T>(a, lda, w, ldw, c, ldc, m, j, end - j, k, accumulate);
    }

    /// <summary>Asks for <paramref name="count"/> weights from <paramref name="index"/> on into L2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch<T>(void* w, long index, int count)
        where T : struct, IWeightLoader
    {
        var start = (byte*)w + (index * T.ElementBytes);
        var bytes = (long)count * T.ElementBytes;
        for (long b = 0; b < bytes; b += 64)
        {
            Sse.Prefetch1(start + b);
        }
    }

    /// <summary>
    /// Converts one weight row and prefetches the row <paramref name="ahead"/> elements further into L2: the compute
    /// between two pairs stalls the hardware prefetcher, and without this every pair waits on DRAM.
    /// </summary>
    private static void ToFloat<T>(void* w, long row, float* dst, int k, long ahead)
        where T : struct, IWeightLoader
    {
        Prefetch<T>(w, row + ahead, k);
        var p = 0;
        for (; p <= k - 16; p += 16)
        {
            T.Load16(w, row + p).Store(dst + p);
        }

        for (; p < k; p++)
        {
            dst[p] = T.Load1(w, row + p);
        }
    }

    /// <summary>
    /// Columns j and j+1 (weight rows at <paramref name="rowA"/> and <paramref name="rowB"/>) for every row: four rows
    /// by two columns per block share each activation and weight load. Each (row, column) sum runs in the order of
    /// <see cref="GemvColumns"/>' one-row loop, so a result does not depend on the rows and columns computed with it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvPair<T>(float* a, long lda, void* w, long rowA, long rowB, float* c, long ldc, int m, int k, bool accumulate)
        where T : struct, IWeightLoader
    {
        var k16 = k & ~15;
        var k8 = k & ~7;
        var i0 = 0;
        for (; i0 + 4 <= m; i0 += 4)
        {
            var a0 = a + (i0 * lda);
            var a1 = a0 + lda;
            var a2 = a1 + lda;
            var a3 = a2 + lda;
            Vector512<float> e00 = default, e01 = default, e10 = default, e11 = default;
            Vector512<float> e20 = default, e21 = default, e30 = default, e31 = default;
            Vector512<float> o00 = default, o01 = default, o10 = default, o11 = default;
            Vector512<float> o20 = default, o21 = default, o30 = default, o31 = default;
            var p = 0;
            for (; p <= k16 - 32; p += 32)
            {
                var wa = T.Load16(w, rowA + p);
                var wb = T.Load16(w, rowB + p);
                var v = Avx512F.LoadVector512(a0 + p);
                e00 = Avx512F.FusedMultiplyAdd(wa, v, e00);
                e01 = Avx512F.FusedMultiplyAdd(wb, v, e01);
                v = Avx512F.LoadVector512(a1 + p);
                e10 = Avx512F.FusedMultiplyAdd(wa, v, e10);
                e11 = Avx512F.FusedMultiplyAdd(wb, v, e11);
                v = Avx512F.LoadVector512(a2 + p);
                e20 = Avx512F.FusedMultiplyAdd(wa, v, e20);
                e21 = Avx512F.FusedMultiplyAdd(wb, v, e21);
                v = Avx512F.LoadVector512(a3 + p);
                e30 = Avx512F.FusedMultiplyAdd(wa, v, e30);
                e31 = Avx512F.FusedMultiplyAdd(wb, v, e31);
                wa = T.Load16(w, rowA + p + 16);
                wb = T.Load16(w, rowB + p + 16);
                v = Avx512F.LoadVector512(a0 + p + 16);
                o00 = Avx512F.FusedMultiplyAdd(wa, v, o00);
                o01 = Avx512F.FusedMultiplyAdd(wb, v, o01);
                v = Avx512F.LoadVector512(a1 + p + 16);
                o10 = Avx512F.FusedMultiplyAdd(wa, v, o10);
                o11 = Avx512F.FusedMultiplyAdd(wb, v, o11);
                v = Avx512F.LoadVector512(a2 + p + 16);
                o20 = Avx512F.FusedMultiplyAdd(wa, v, o20);
                o21 = Avx512F.FusedMultiplyAdd(wb, v, o21);
                v = Avx512F.LoadVector512(a3 + p + 16);
                o30 = Avx512F.FusedMultiplyAdd(wa, v, o30);
                o31 = Avx512F.FusedMultiplyAdd(wb, v, o31);
            }

            for (; p < k16; p += 16)
            {
                var wa = T.Load16(w, rowA + p);
                var wb = T.Load16(w, rowB + p);
                var v = Avx512F.LoadVector512(a0 + p);
                e00 = Avx512F.FusedMultiplyAdd(wa, v, e00);
                e01 = Avx512F.FusedMultiplyAdd(wb, v, e01);
                v = Avx512F.LoadVector512(a1 + p);
                e10 = Avx512F.FusedMultiplyAdd(wa, v, e10);
                e11 = Avx512F.FusedMultiplyAdd(wb, v, e11);
                v = Avx512F.LoadVector512(a2 + p);
                e20 = Avx512F.FusedMultiplyAdd(wa, v, e20);
                e21 = Avx512F.FusedMultiplyAdd(wb, v, e21);
                v = Avx512F.LoadVector512(a3 + p);
                e30 = Avx512F.FusedMultiplyAdd(wa, v, e30);
                e31 = Avx512F.FusedMultiplyAdd(wb, v, e31);
            }

            var r00 = Vector512.Sum(e00 + o00);
            var r01 = Vector512.Sum(e01 + o01);
            var r10 = Vector512.Sum(e10 + o10);
            var r11 = Vector512.Sum(e11 + o11);
            var r20 = Vector512.Sum(e20 + o20);
            var r21 = Vector512.Sum(e21 + o21);
            var r30 = Vector512.Sum(e30 + o30);
            var r31 = Vector512.Sum(e31 + o31);
            if (k8 > k16)
            {
                var wa = T.Load8(w, rowA + p);
                var wb = T.Load8(w, rowB + p);
                r00 += Vector256.Sum(Avx.Multiply(wa, Avx.LoadVector256(a0 + p)));
                r01 += Vector256.Sum(Avx.Multiply(wb, Avx.LoadVector256(a0 + p)));
                r10 += Vector256.Sum(Avx.Multiply(wa, Avx.LoadVector256(a1 + p)));
                r11 += Vector256.Sum(Avx.Multiply(wb, Avx.LoadVector256(a1 + p)));
                r20 += Vector256.Sum(Avx.Multiply(wa, Avx.LoadVector256(a2 + p)));
                r21 += Vector256.Sum(Avx.Multiply(wb, Avx.LoadVector256(a2 + p)));
                r30 += Vector256.Sum(Avx.Multiply(wa, Avx.LoadVector256(a3 + p)));
                r31 += Vector256.Sum(Avx.Multiply(wb, Avx.LoadVector256(a3 + p)));
                p += 8;
            }
            else
            {
                r00 += 0f;
                r01 += 0f;
                r10 += 0f;
                r11 += 0f;
                r20 += 0f;
                r21 += 0f;
                r30 += 0f;
                r31 += 0f;
            }

            for (; p < k; p++)
            {
                var wa = T.Load1(w, rowA + p);
                var wb = T.Load1(w, rowB + p);
                r00 += wa * a0[p];
                r01 += wb * a0[p];
                r10 += wa * a1[p];
                r11 += wb * a1[p];
                r20 += wa * a2[p];
                r21 += wb * a2[p];
                r30 += wa * a3[p];
                r31 += wb * a3[p];
            }

            var ci = c + (i0 * ldc);
            Put(ci, accumulate, r00);
            Put(ci + 1, accumulate, r01);
            Put(ci + ldc, accumulate, r10);
            Put(ci + ldc + 1, accumulate, r11);
            Put(ci + (2 * ldc), accumulate, r20);
            Put(ci + (2 * ldc) + 1, accumulate, r21);
            Put(ci + (3 * ldc), accumulate, r30);
            Put(ci + (3 * ldc) + 1, accumulate, r31);
        }

        for (; i0 < m; i0++)
        {
            var ai = a + (i0 * lda);
            var ci = c + (i0 * ldc);
            Put(ci, accumulate, Dot<T>(ai, w, rowA, k));
            Put(ci + 1, accumulate, Dot<T>(ai, w, rowB, k));
        }
    }

    /// <summary>One row against one weight row: the summation order every GEMV path keeps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot<T>(float* ai, void* w, long row, int k)
        where T : struct, IWeightLoader
    {
        var k16 = Avx512F.IsSupported ? k & ~15 : 0;
        var k8 = k & ~7;
        var p = 0;
        var w0 = Vector512<float>.Zero;
        var w1 = Vector512<float>.Zero;
        for (; p <= k16 - 32; p += 32)
        {
            w0 = Avx512F.FusedMultiplyAdd(T.Load16(w, row + p), Avx512F.LoadVector512(ai + p), w0);
            w1 = Avx512F.FusedMultiplyAdd(T.Load16(w, row + p + 16), Avx512F.LoadVector512(ai + p + 16), w1);
        }

        for (; p < k16; p += 16)
        {
            w0 = Avx512F.FusedMultiplyAdd(T.Load16(w, row + p), Avx512F.LoadVector512(ai + p), w0);
        }

        var s = Vector256<float>.Zero;
        for (; p < k8; p += 8)
        {
            s = Fma.MultiplyAdd(T.Load8(w, row + p), Avx.LoadVector256(ai + p), s);
        }

        var r = (k16 > 0 ? Vector512.Sum(w0 + w1) : 0f) + Vector256.Sum(s);
        for (; p < k; p++)
        {
            r += T.Load1(w, row + p) * ai[p];
        }

        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GemvColumns<T>(float* a, long lda, void* w, long ldw, float* c, long ldc, int m, int n0, int nb, int k, bool accumulate)
        where T : struct, IWeightLoader
    {
        var wide = Avx512F.IsSupported;
        var k16 = wide ? k & ~15 : 0;
        var k8 = k & ~7;
        for (var j = n0; j < n0 + nb; j++)
        {
            var row = (long)j * ldw;
            var i0 = 0;

            // Four rows share each weight load and conversion; every row's sums run in the order of the one-row loop
            // below, so a row's result does not depend on how many rows are computed with it (batched decode equals
            // decode alone, bit for bit).
            for (; i0 + 4 <= m; i0 += 4)
            {
                var a0 = a + (i0 * lda);
                var a1 = a0 + lda;
                var a2 = a1 + lda;
                var a3 = a2 + lda;
                var p = 0;
                Vector512<float> x00 = default, x01 = default, x10 = default, x11 = default;
                Vector512<float> x20 = default, x21 = default, x30 = default, x31 = default;
                for (; p <= k16 - 32; p += 32)
                {
                    var wa = T.Load16(w, row + p);
                    var wb = T.Load16(w, row + p + 16);
                    x00 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a0 + p), x00);
                    x01 = Avx512F.FusedMultiplyAdd(wb, Avx512F.LoadVector512(a0 + p + 16), x01);
                    x10 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a1 + p), x10);
                    x11 = Avx512F.FusedMultiplyAdd(wb, Avx512F.LoadVector512(a1 + p + 16), x11);
                    x20 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a2 + p), x20);
                    x21 = Avx512F.FusedMultiplyAdd(wb, Avx512F.LoadVector512(a2 + p + 16), x21);
                    x30 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a3 + p), x30);
                    x31 = Avx512F.FusedMultiplyAdd(wb, Avx512F.LoadVector512(a3 + p + 16), x31);
                }

                for (; p < k16; p += 16)
                {
                    var wa = T.Load16(w, row + p);
                    x00 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a0 + p), x00);
                    x10 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a1 + p), x10);
                    x20 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a2 + p), x20);
                    x30 = Avx512F.FusedMultiplyAdd(wa, Avx512F.LoadVector512(a3 + p), x30);
                }

                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                for (; p < k8; p += 8)
                {
                    var wv = T.Load8(w, row + p);
                    s0 = Fma.MultiplyAdd(wv, Avx.LoadVector256(a0 + p), s0);
                    s1 = Fma.MultiplyAdd(wv, Avx.LoadVector256(a1 + p), s1);
                    s2 = Fma.MultiplyAdd(wv, Avx.LoadVector256(a2 + p), s2);
                    s3 = Fma.MultiplyAdd(wv, Avx.LoadVector256(a3 + p), s3);
                }

                var r0 = Vector512.Sum(x00 + x01) + Vector256.Sum(s0);
                var r1 = Vector512.Sum(x10 + x11) + Vector256.Sum(s1);
                var r2 = Vector512.Sum(x20 + x21) + Vector256.Sum(s2);
                var r3 = Vector512.Sum(x30 + x31) + Vector256.Sum(s3);
                for (; p < k; p++)
                {
                    var wv = T.Load1(w, row + p);
                    r0 += wv * a0[p];
                    r1 += wv * a1[p];
                    r2 += wv * a2[p];
                    r3 += wv * a3[p];
                }

                Put(c + (i0 * ldc) + j, accumulate, r0);
                Put(c + ((i0 + 1) * ldc) + j, accumulate, r1);
                Put(c + ((i0 + 2) * ldc) + j, accumulate, r2);
                Put(c + ((i0 + 3) * ldc) + j, accumulate, r3);
            }

            for (; i0 < m; i0++)
            {
                Put(c + (i0 * ldc) + j, accumulate, Dot<T>(a + (i0 * lda), w, row, k));
            }
        }
    }

    private interface IWeightLoader
    {
        static abstract int ElementBytes { get; }

        static abstract Vector512<float> Load16(void* p, long index);

        static abstract Vector256<float> Load8(void* p, long index);

        static abstract float Load1(void* p, long index);
    }

    private readonly struct F16Weights : IWeightLoader
    {
        public static int ElementBytes => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(void* p, long index) => HalfConversion.HalfToSingle(Vector256.Load((ushort*)p + index));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(void* p, long index) => HalfConversion.HalfToSingle(Vector128.Load((ushort*)p + index));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(void* p, long index) => (float)((Half*)p)[index];
    }

    private readonly struct BF16Weights : IWeightLoader
    {
        public static int ElementBytes => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(void* p, long index) =>
            Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)p + index)), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(void* p, long index) => HalfConversion.BFloatToSingle(Vector128.Load((ushort*)p + index));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(void* p, long index) => BitConverter.Int32BitsToSingle(((ushort*)p)[index] << 16);
    }

    private readonly struct F32Weights : IWeightLoader
    {
        public static int ElementBytes => 4;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(void* p, long index) => Vector512.Load((float*)p + index);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load8(void* p, long index) => Vector256.Load((float*)p + index);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Load1(void* p, long index) => ((float*)p)[index];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, bool accumulate, float v) => *c = accumulate ? *c + v : v;
}
