using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.Tests.Support;

namespace KvFusion.Engine.Tests.Transformer;

[Collection(SharedModelsGroup.Name)]
public sealed class KvCacheGoldenTests(CpuModelFixture fixture)
{
    [SkippableFact]
    public void Cache_holds_transformers_keys_after_rope_and_values_for_layers_0_and_5()
    {
        var model = fixture.Model("tiny-pydocs");
        using var golden = SharedModels.Golden("tiny-pydocs", "kv_golden.json");
        var ids = SharedModels.Ints(golden.RootElement.GetProperty("input_ids"));
        using var session = model.CreateSession(ids.Length);
        session.Prefill(ids, new float[model.Config.VocabSize]);
        var c = model.Config;
        foreach (var layer in golden.RootElement.GetProperty("layers").EnumerateObject())
        {
            var l = int.Parse(layer.Name, System.Globalization.CultureInfo.InvariantCulture);
            var k = ReadCache(model.Backend, session.Cache.Keys(l), session.Cache.Capacity, c);
            var v = ReadCache(model.Backend, session.Cache.Values(l), session.Cache.Capacity, c);
            Compare(layer.Value.GetProperty("k"), k, ids.Length, c, $"K layer {l}");
            Compare(layer.Value.GetProperty("v"), v, ids.Length, c, $"V layer {l}");
        }
    }

    [SkippableFact]
    public void Keys_stored_before_rope_and_rotated_to_new_positions_equal_keys_computed_at_those_positions()
    {
        var model = fixture.Model("tiny-pydocs");
        var c = model.Config;
        var backend = model.Backend;
        var ids = new[] { 26, 817, 334, 2970, 14, 68, 689, 14, 80, 1078, 68, 689 };
        const int shift = 37;
        var n = ids.Length;

        // The canonical form: K before RoPE, captured at layer 3 while computing the chunk at positions 0..n-1.
        using var at0 = model.CreateSession(n);
        var pass = at0.BeginPass(ids, Range(0, n), Range(0, n));
        for (var l = 0; l < 3; l++)
        {
            pass.RunLayer(l);
        }

        pass.ComputeQkv(3);
        var kPre = new float[n * c.KvWidth];
        pass.DownloadFreshKv(preRope: true, kPre, []);

        // Direct computation with the same tokens at positions shift..shift+n-1 (same slots, so same context).
        using var shifted = model.CreateSession(n);
        var pass2 = shifted.BeginPass(ids, Range(0, n), Range(shift, n));
        for (var l = 0; l < 3; l++)
        {
            pass2.RunLayer(l);
        }

        pass2.ComputeQkv(3);
        var kDirect = new float[n * c.KvWidth];
        pass2.DownloadFreshKv(preRope: false, kDirect, []);

        // Rotate the stored pre-RoPE K to the new positions with the backend's RoPE.
        using var x = backend.Allocate(TensorDType.F32, n, c.KvWidth);
        using var pos = backend.Allocate(TensorDType.I32, n, 1);
        backend.Upload(kPre, x, 0);
        backend.Upload(Range(shift, n), pos, 0);
        backend.ApplyRope(x, n, c.HeadDim, pos, model.InverseFrequencies, x);
        var rotated = new float[n * c.KvWidth];
        backend.Download(x, 0, n, rotated);
        for (var i = 0; i < rotated.Length; i++)
        {
            Assert.True(MathF.Abs(rotated[i] - kDirect[i]) <= 1e-4f, $"element {i}: {rotated[i]} vs {kDirect[i]}");
        }

        // And the inverse: rotating by −p restores the canonical K.
        backend.Upload(Range(-shift, n, step: -1), pos, 0);
        backend.ApplyRope(x, n, c.HeadDim, pos, model.InverseFrequencies, x);
        var back = new float[n * c.KvWidth];
        backend.Download(x, 0, n, back);
        for (var i = 0; i < back.Length; i++)
        {
            Assert.True(MathF.Abs(back[i] - kPre[i]) <= 1e-4f, $"inverse element {i}");
        }
    }

    private static int[] Range(int start, int count, int step = 1)
    {
        var r = new int[count];
        for (var i = 0; i < count; i++)
        {
            r[i] = start + (i * step);
        }

        return r;
    }

    private static float[] ReadCache(ComputeBackend backend, DeviceTensor t, int capacity, ModelConfig c)
    {
        var all = new float[t.ElementCount];
        backend.Download(t, 0, t.Rows, all);
        return all;
    }

    private static void Compare(System.Text.Json.JsonElement expected, float[] cache, int tokens, ModelConfig c, string what)
    {
        var capacity = cache.Length / (c.KvHeadCount * c.HeadDim);
        var h = 0;
        foreach (var head in expected.EnumerateArray())
        {
            var t = 0;
            foreach (var token in head.EnumerateArray())
            {
                var d = 0;
                foreach (var value in token.EnumerateArray())
                {
                    var got = cache[((((long)h * capacity) + t) * c.HeadDim) + d];
                    Assert.True(MathF.Abs(got - value.GetSingle()) <= 2e-3f, $"{what}: head {h} token {t} dim {d}: {got} vs {value.GetSingle()}");
                    d++;
                }

                t++;
            }

            Assert.Equal(tokens, t);
            h++;
        }

        Assert.Equal(c.KvHeadCount, h);
    }

    [SkippableFact]
    public void Half_precision_import_of_every_layer_at_other_slots_and_positions_exports_back_unchanged()
    {
        var model = fixture.Model("tiny-pydocs");
        var c = model.Config;
        var ids = new[] { 26, 817, 334, 2970, 14, 68, 689, 14, 80, 1078 };
        var n = ids.Length;
        using var source = model.CreateSession(n);
        var logits = new float[c.VocabSize];
        source.Prefill(ids, logits);

        // Export each layer (token-major, pre-RoPE) into the stored layout [layer][kv_head][token][head_dim], as fp16.
        var layerValues = n * c.KvWidth;
        var keys = new Half[c.LayerCount * layerValues];
        var values = new Half[c.LayerCount * layerValues];
        var k = new float[layerValues];
        var v = new float[layerValues];
        for (var l = 0; l < c.LayerCount; l++)
        {
            source.ExportKv(l, 0, n, k, v);
            for (var t = 0; t < n; t++)
            {
                for (var h = 0; h < c.KvHeadCount; h++)
                {
                    for (var d = 0; d < c.HeadDim; d++)
                    {
                        var stored = (l * layerValues) + (((h * n) + t) * c.HeadDim) + d;
                        keys[stored] = (Half)k[(t * c.KvWidth) + (h * c.HeadDim) + d];
                        values[stored] = (Half)v[(t * c.KvWidth) + (h * c.HeadDim) + d];
                    }
                }
            }
        }

        // Import at slots 5.. and positions 100.., then export again: the rotation to 100.. is undone on export.
        const int firstSlot = 5;
        using var target = model.CreateSession(firstSlot + n);
        var slots = Range(firstSlot, n);
        target.Cache.SetPositions(slots, Range(100, n));
        target.ImportKvHalf(firstSlot, n, keys, values);
        Assert.Throws<ArgumentException>(() => target.ImportKvHalf(firstSlot, n, keys.AsSpan(1), values));
        for (var l = 0; l < c.LayerCount; l++)
        {
            target.ExportKv(l, firstSlot, n, k, v);
            for (var t = 0; t < n; t++)
            {
                for (var h = 0; h < c.KvHeadCount; h++)
                {
                    for (var d = 0; d < c.HeadDim; d++)
                    {
                        var stored = (l * layerValues) + (((h * n) + t) * c.HeadDim) + d;
                        var at = (t * c.KvWidth) + (h * c.HeadDim) + d;
                        Assert.True(MathF.Abs(k[at] - (float)keys[stored]) <= 1e-3f * (1 + MathF.Abs(k[at])), $"layer {l} K {at}: {k[at]} vs {(float)keys[stored]}");
                        Assert.Equal((float)values[stored], v[at]);
                    }
                }
            }
        }
    }
}
