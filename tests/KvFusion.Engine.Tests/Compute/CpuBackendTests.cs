using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tests.Compute;

/// <summary>The CPU kernels against plain scalar references on random inputs and awkward sizes.</summary>
public sealed class CpuBackendTests : IDisposable
{
    private readonly CpuBackend _backend = new(2);

    public void Dispose() => _backend.Dispose();

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new System.Random(seed);
        var v = new float[n];
        for (var i = 0; i < n; i++)
        {
            v[i] = (float)((r.NextDouble() * 2) - 1) * scale;
        }

        return v;
    }

    private DeviceTensor Upload(float[] data, int rows, int cols)
    {
        var t = _backend.Allocate(TensorDType.F32, rows, cols);
        _backend.Upload(data, t, 0);
        return t;
    }

    private DeviceTensor UploadInts(int[] data)
    {
        var t = _backend.Allocate(TensorDType.I32, data.Length, 1);
        _backend.Upload(data, t, 0);
        return t;
    }

    private float[] Read(DeviceTensor t, int rows)
    {
        var v = new float[rows * t.Cols];
        _backend.Download(t, 0, rows, v);
        return v;
    }

    [Theory]
    [InlineData(1, 7, 5)]
    [InlineData(3, 33, 17)]
    [InlineData(4, 256, 256)]
    [InlineData(5, 19, 300)]
    [InlineData(13, 100, 513)]
    [InlineData(200, 129, 260)]
    [InlineData(64, 768, 256)]
    public void MatMul_matches_the_scalar_reference_for_fp16_bf16_and_fp32_weights(int m, int n, int k)
    {
        var x = Random(m * k, 1);
        var w = Random(n * k, 2, 0.1f);
        var bias = Random(n, 3);
        foreach (var dtype in new[] { TensorDType.F32, TensorDType.F16, TensorDType.BF16 })
        {
            var (weight, stored) = WeightTensor(w, n, k, dtype);
            using var weightTensor = weight;
            using var xt = Upload(x, m, k);
            using var yt = _backend.Allocate(TensorDType.F32, m, n);
            using var bt = Upload(bias, 1, n);
            _backend.MatMul(xt, m, weightTensor, bt, yt, accumulate: false);
            _backend.MatMul(xt, m, weightTensor, null, yt, accumulate: true);
            var y = Read(yt, m);
            for (var i = 0; i < m; i++)
            {
                for (var j = 0; j < n; j++)
                {
                    double s = 0;
                    for (var p = 0; p < k; p++)
                    {
                        s += x[(i * k) + p] * stored[(j * k) + p];
                    }

                    var expected = (2 * s) + bias[j];
                    Assert.True(Math.Abs(y[(i * n) + j] - expected) <= 1e-3 * (1 + Math.Abs(expected)), $"{dtype} [{i},{j}]: {y[(i * n) + j]} vs {expected}");
                }
            }
        }
    }

    [Theory]
    [InlineData(24, 7, 5)]
    [InlineData(17, 33, 40)]
    [InlineData(9, 19, 300)]
    [InlineData(16, 64, 576)]
    [InlineData(23, 12, 577)]
    public void MatMul_of_few_rows_gives_each_row_the_same_bits_as_that_row_alone(int m, int n, int k)
    {
        var x = Random(m * k, 4);
        var w = Random(n * k, 5, 0.1f);
        foreach (var dtype in new[] { TensorDType.F32, TensorDType.F16, TensorDType.BF16 })
        {
            var (weight, _) = WeightTensor(w, n, k, dtype);
            using var weightTensor = weight;
            using var xt = Upload(x, m, k);
            using var yt = _backend.Allocate(TensorDType.F32, m, n);
            _backend.MatMul(xt, m, weightTensor, null, yt, accumulate: false);
            var together = Read(yt, m);
            for (var rows = 1; rows <= m; rows += rows < 4 ? 1 : 3)
            {
                for (var i = 0; i + rows <= m; i += rows)
                {
                    using var part = Upload(x.AsSpan(i * k, rows * k).ToArray(), rows, k);
                    using var partOut = _backend.Allocate(TensorDType.F32, rows, n);
                    _backend.MatMul(part, rows, weightTensor, null, partOut, accumulate: false);
                    var alone = Read(partOut, rows);
                    for (var e = 0; e < rows * n; e++)
                    {
                        Assert.True(
                            BitConverter.SingleToInt32Bits(alone[e]) == BitConverter.SingleToInt32Bits(together[(i * n) + e]),
                            $"{dtype} rows {i}..{i + rows - 1}, element {e}: {alone[e]} alone vs {together[(i * n) + e]} with {m} rows");
                    }
                }
            }
        }
    }

    private unsafe (DeviceTensor Tensor, float[] Stored) WeightTensor(float[] w, int rows, int cols, TensorDType dtype)
    {
        var t = _backend.Allocate(dtype, rows, cols);
        var stored = new float[w.Length];
        // Write the raw bits through a float view of the same bytes.
        var f32 = new float[(w.Length * dtype.SizeInBytes() + 3) / 4];
        fixed (float* dst = f32)
        {
            for (var i = 0; i < w.Length; i++)
            {
                switch (dtype)
                {
                    case TensorDType.F16:
                        ((Half*)dst)[i] = (Half)w[i];
                        stored[i] = (float)((Half*)dst)[i];
                        break;
                    case TensorDType.BF16:
                        var bits = (ushort)(BitConverter.SingleToInt32Bits(w[i]) >>> 16);
                        ((ushort*)dst)[i] = bits;
                        stored[i] = BitConverter.Int32BitsToSingle(bits << 16);
                        break;
                    default:
                        dst[i] = w[i];
                        stored[i] = w[i];
                        break;
                }
            }
        }

        var bytes = new byte[w.Length * dtype.SizeInBytes()];
        Buffer.BlockCopy(f32, 0, bytes, 0, bytes.Length);
        fixed (byte* b = bytes)
        {
            var view = (CpuTensor)t;
            view.CopyFrom(b, bytes.Length);
        }

        return (t, stored);
    }

    [Theory]
    [InlineData(1, 20, 4, 2, 16)]
    [InlineData(3, 40, 8, 4, 32)]
    [InlineData(70, 70, 4, 1, 32)]
    [InlineData(100, 300, 6, 3, 24)]
    public void Attention_matches_the_scalar_reference_with_causal_mask_by_position_and_gqa(int rows, int keys, int heads, int kvHeads, int hd)
    {
        var capacity = keys + 5;
        var q = Random(rows * heads * hd, 4);
        var kc = Random(kvHeads * capacity * hd, 5);
        var vc = Random(kvHeads * capacity * hd, 6);
        // Key positions with gaps and repeats (non-decreasing), queries at positions that cut through them.
        var kpos = new int[capacity];
        for (var s = 0; s < capacity; s++)
        {
            kpos[s] = s + (s / 7);
        }

        var qpos = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            qpos[r] = kpos[keys - rows + r >= 0 ? keys - rows + r : r % keys];
        }

        using var qt = Upload(q, rows, heads * hd);
        using var kt = Upload(kc, kvHeads * capacity, hd);
        using var vt = Upload(vc, kvHeads * capacity, hd);
        using var qp = UploadInts(qpos);
        using var kp = UploadInts(kpos);
        using var ot = _backend.Allocate(TensorDType.F32, rows, heads * hd);
        using var attn = _backend.Allocate(TensorDType.F32, capacity, 1);
        var scale = 1f / MathF.Sqrt(hd);
        _backend.Attention(new AttentionArguments(qt, rows, qp, kt, vt, kp, keys, capacity, heads, kvHeads, hd, scale, ot, attn));
        var o = Read(ot, rows);
        var keyWeights = Read(attn, capacity);
        var expectedWeights = new double[capacity];
        for (var r = 0; r < rows; r++)
        {
            for (var h = 0; h < heads; h++)
            {
                var g = h / (heads / kvHeads);
                var scores = new List<(int Slot, double S)>();
                for (var s = 0; s < keys; s++)
                {
                    if (kpos[s] > qpos[r])
                    {
                        continue;
                    }

                    double dot = 0;
                    for (var d = 0; d < hd; d++)
                    {
                        dot += q[(r * heads * hd) + (h * hd) + d] * kc[(((g * capacity) + s) * hd) + d];
                    }

                    scores.Add((s, dot * scale));
                }

                var max = scores.Max(x => x.S);
                var sum = scores.Sum(x => Math.Exp(x.S - max));
                for (var d = 0; d < hd; d++)
                {
                    double acc = 0;
                    foreach (var (slot, sc) in scores)
                    {
                        acc += Math.Exp(sc - max) / sum * vc[(((g * capacity) + slot) * hd) + d];
                    }

                    var got = o[(r * heads * hd) + (h * hd) + d];
                    Assert.True(Math.Abs(got - acc) <= 1e-4, $"row {r} head {h} dim {d}: {got} vs {acc}");
                }

                foreach (var (slot, sc) in scores)
                {
                    expectedWeights[slot] += Math.Exp(sc - max) / sum;
                }
            }
        }

        for (var s = 0; s < keys; s++)
        {
            Assert.True(Math.Abs(keyWeights[s] - expectedWeights[s]) <= 1e-3, $"attention to slot {s}");
        }
    }

    [Fact]
    public void RmsNorm_silu_and_add_match_the_scalar_reference()
    {
        const int rows = 37, cols = 300;
        var x = Random(rows * cols, 7, 3);
        var w = Random(cols, 8);
        using var xt = Upload(x, rows, cols);
        using var wt = Upload(w, 1, cols);
        using var yt = _backend.Allocate(TensorDType.F32, rows, cols);
        _backend.RmsNorm(xt, rows, wt, 1e-5f, yt);
        var y = Read(yt, rows);
        for (var r = 0; r < rows; r++)
        {
            double ss = 0;
            for (var c = 0; c < cols; c++)
            {
                ss += x[(r * cols) + c] * x[(r * cols) + c];
            }

            var scale = 1 / Math.Sqrt((ss / cols) + 1e-5);
            for (var c = 0; c < cols; c++)
            {
                Assert.True(Math.Abs(y[(r * cols) + c] - (w[c] * x[(r * cols) + c] * scale)) <= 1e-4);
            }
        }

        var up = Random(rows * cols, 9);
        using var ut = Upload(up, rows, cols);
        _backend.SiluMultiply(xt, ut, rows, yt);
        y = Read(yt, rows);
        for (var i = 0; i < rows * cols; i++)
        {
            var g = x[i];
            var expected = g / (1 + Math.Exp(-g)) * up[i];
            Assert.True(Math.Abs(y[i] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"silu {i}");
        }

        _backend.Add(yt, ut, rows);
        var z = Read(yt, rows);
        for (var i = 0; i < rows * cols; i++)
        {
            Assert.Equal(y[i] + up[i], z[i], 5);
        }
    }

    [Fact]
    public void Cache_scatter_gather_and_deviation_agree()
    {
        const int kvHeads = 2, hd = 8, capacity = 10, rows = 3;
        var src = Random(rows * kvHeads * hd, 10);
        using var s = Upload(src, rows, kvHeads * hd);
        using var cache = _backend.Allocate(TensorDType.F32, kvHeads * capacity, hd);
        using var slots = UploadInts([7, 2, 9]);
        _backend.ScatterToCache(s, rows, slots, cache, kvHeads, capacity);
        using var back = _backend.Allocate(TensorDType.F32, rows, kvHeads * hd);
        _backend.GatherFromCache(cache, kvHeads, capacity, slots, rows, back);
        Assert.Equal(src, Read(back, rows));
        using var dev = _backend.Allocate(TensorDType.F32, rows, 1);
        _backend.CacheDeviation(s, rows, slots, cache, kvHeads, capacity, dev);
        Assert.All(Read(dev, rows), d => Assert.Equal(0f, d));
        using var bad = UploadInts([10, 0, 0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => _backend.ScatterToCache(s, rows, bad, cache, kvHeads, capacity));
    }

    [Fact]
    public void SelectTopK_returns_ascending_rows_of_the_largest_scores_with_ties_to_the_lower_row_and_nan_last()
    {
        float[] scores = [1f, 3f, 3f, float.NaN, float.NegativeInfinity, 2f, 3f];
        using var s = Upload(scores, scores.Length, 1);
        using var idx = _backend.Allocate(KvFusion.Engine.Models.TensorDType.I32, scores.Length, 1);

        Assert.Equal([1, 2], TopK(s, idx, scores.Length, 2));
        Assert.Equal([1, 2, 5, 6], TopK(s, idx, scores.Length, 4));
        Assert.Equal([0, 1, 2, 4, 5, 6], TopK(s, idx, scores.Length, 6));
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], TopK(s, idx, scores.Length, 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => _backend.SelectTopK(s, scores.Length, 8, idx));
        Assert.Throws<ArgumentOutOfRangeException>(() => _backend.SelectTopK(s, scores.Length, -1, idx));
    }

    private int[] TopK(KvFusion.Engine.Compute.DeviceTensor scores, KvFusion.Engine.Compute.DeviceTensor indices, int n, int k)
    {
        _backend.SelectTopK(scores, n, k, indices);
        var identity = new float[n];
        for (var i = 0; i < n; i++)
        {
            identity[i] = i;
        }

        using var table = Upload(identity, n, 1);
        using var picked = _backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, k, 1);
        _backend.GatherRows(table, indices, k, picked);
        return Read(picked, k).Select(f => (int)f).ToArray();
    }

    [Fact]
    public void ImportHalfToCache_widens_into_the_given_slots_rotates_keys_and_leaves_other_slots_alone()
    {
        const int kvHeads = 2, capacity = 10, hd = 4, count = 3, first = 5;
        var start = Random(kvHeads * capacity * hd, 11);
        using var cache = Upload(start, kvHeads * capacity, hd);
        var source = new Half[kvHeads * count * hd];
        for (var i = 0; i < source.Length; i++)
        {
            source[i] = (Half)(0.25f * (i + 1));
        }

        _backend.ImportHalfToCache(source, count, cache, kvHeads, capacity, first, null, null);
        var plain = Read(cache, kvHeads * capacity);
        for (var h = 0; h < kvHeads; h++)
        {
            for (var slot = 0; slot < capacity; slot++)
            {
                for (var d = 0; d < hd; d++)
                {
                    var at = ((h * capacity) + slot) * hd + d;
                    var t = slot - first;
                    var expected = t is >= 0 and < count ? (float)source[((h * count) + t) * hd + d] : start[at];
                    Assert.Equal(expected, plain[at]);
                }
            }
        }

        // With RoPE: the same as importing, then rotating those rows with ApplyRope at the same positions.
        using var positions = UploadInts([7, 8, 9]);
        using var inv = Upload([1f, 0.01f], 2, 1);
        using var rotated = Upload(start, kvHeads * capacity, hd);
        _backend.ImportHalfToCache(source, count, rotated, kvHeads, capacity, first, positions, inv);
        var got = Read(rotated, kvHeads * capacity);
        for (var h = 0; h < kvHeads; h++)
        {
            var rows = new float[count * hd];
            Array.Copy(plain, ((h * capacity) + first) * hd, rows, 0, rows.Length);
            using var x = Upload(rows, count, hd);
            _backend.ApplyRope(x, count, hd, positions, inv, x);
            var expected = Read(x, count);
            for (var i = 0; i < rows.Length; i++)
            {
                Assert.Equal(expected[i], got[((h * capacity) + first) * hd + i], 6);
            }
        }
    }

    [Fact]
    public void Bad_shapes_of_embed_norm_import_and_key_weights_are_rejected_with_a_clear_error()
    {
        using var wide = Upload(Random(6, 1), 1, 6);
        using var narrow = _backend.Allocate(TensorDType.F32, 2, 4);
        using var ids = UploadInts([0, 0]);
        var embed = Assert.Throws<ArgumentException>(() => _backend.Embed(wide, ids, 1, narrow));
        Assert.Contains("cannot hold", embed.Message, StringComparison.Ordinal);
        var norm = Assert.Throws<ArgumentException>(() => _backend.RmsNorm(wide, 1, wide, 1e-5f, narrow));
        Assert.Contains("output as wide", norm.Message, StringComparison.Ordinal);

        using var cache = _backend.Allocate(TensorDType.F32, 2 * 8, 4);
        var halves = new Half[2 * 3 * 4];
        using var positions = UploadInts([0, 1, 2]);
        using var oneFrequency = Upload([1f], 1, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => _backend.ImportHalfToCache(halves, 3, cache, 2, 8, 6, null, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => _backend.ImportHalfToCache(halves.AsSpan(1), 3, cache, 2, 8, 0, null, null));
        Assert.Throws<ArgumentException>(() => _backend.ImportHalfToCache(halves, 3, cache, 2, 8, 0, positions, null));
        Assert.Throws<ArgumentException>(() => _backend.ImportHalfToCache(halves, 3, cache, 2, 8, 0, positions, oneFrequency));
        using var odd = _backend.Allocate(TensorDType.F32, 2 * 8, 3);
        Assert.Throws<ArgumentException>(() => _backend.ImportHalfToCache(new Half[18], 3, odd, 2, 8, 0, null, null));

        using var q = _backend.Allocate(TensorDType.F32, 1, 8);
        using var o = _backend.Allocate(TensorDType.F32, 1, 8);
        using var qpos = UploadInts([5]);
        using var kpos = UploadInts([0, 1, 2, 3, 4, 5, 6, 7]);
        using var fewWeights = _backend.Allocate(TensorDType.F32, 3, 1);
        var args = new KvFusion.Engine.Compute.AttentionArguments(q, 1, qpos, cache, cache, kpos, 6, 8, 2, 2, 4, 0.5f, o, fewWeights);
        var attention = Assert.Throws<ArgumentException>(() => _backend.Attention(args));
        Assert.Contains("key weights", attention.Message, StringComparison.Ordinal);
    }
}
