using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using KvFusion.Engine.Compute;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// The quantization step of the cachegen codec: max-abs scales (per token or per channel) and <c>2B + 1</c> uniform
/// levels, q = round(x / scale · B) in [-B, B], stored as the symbol q + B. Symbols are laid out token-major,
/// [run][channel] with channel = head · width + dim and <c>runLength</c> ≥ tokens rows (the rows after the tokens are
/// padding, the zero symbol B); <see cref="Entropy.RansRunCoder"/> codes each channel (a column) with its own
/// statistics.
/// </summary>
/// <remarks>
/// A scale is the fp16 value at or above the exact max-abs, so |x| / scale ≤ 1 and no value is clipped: the error of
/// an element is at most scale / (2B) (<see cref="ErrorBound"/>), plus the fp16 rounding of the reconstruction.
/// </remarks>
internal static class CacheGenQuantizer
{
    /// <summary>Scales a section needs.</summary>
    public static int ScaleCount(in KvSectionShape shape, CacheGenScaling scaling) =>
        scaling == CacheGenScaling.PerToken ? shape.Tokens : shape.Channels;

    /// <summary>The run length of a section: its tokens rounded up to the coder's interleave of 4.</summary>
    public static int RunLength(int tokens) => (tokens + 3) & ~3;

    /// <summary>Quantizes a section's values ([head][token][width]) into token-major symbols and fp16 scales.</summary>
    /// <exception cref="ArgumentException">A value is not finite (the engine never stores one).</exception>
    public static void Quantize(ReadOnlySpan<Half> values, in KvSectionShape shape, CacheGenScaling scaling, int levels, int runLength, Span<Half> scales, Span<byte> symbols)
    {
        var tokens = shape.Tokens;
        var width = shape.Width;
        var heads = shape.Heads;
        var channels = shape.Channels;
        var scaleCount = ScaleCount(shape, scaling);
        Span<float> maxima = scaleCount <= 4096 ? stackalloc float[scaleCount] : new float[scaleCount];
        maxima.Clear();
        // Each row is widened to fp32 once (vectorized) for the scales and once more below for the symbols.
        Span<float> floats = width <= 1024 ? stackalloc float[width] : new float[width];
        for (var h = 0; h < heads; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                FloatConversion.ToSingle(values.Slice(((h * tokens) + t) * width, width), floats);
                // The largest magnitude is infinite or NaN exactly when some value of the row is not finite.
                var largest = MathF.Abs(TensorPrimitives.MaxMagnitude(floats));
                if (!float.IsFinite(largest))
                    throw new ArgumentException($"Section {shape.Kind} of layer {shape.Layer} holds a non-finite value at head {h}, token {t}.", nameof(values));
                if (scaling == CacheGenScaling.PerToken)
                {
                    maxima[t] = MathF.Max(maxima[t], largest);
                }
                else
                {
                    var m = maxima.Slice(h * width, width);
                    for (var d = 0; d < width; d++)
                        m[d] = MathF.Max(m[d], MathF.Abs(floats[d]));
                }
            }
        }

        for (var i = 0; i < scaleCount; i++)
            scales[i] = ScaleAtLeast(maxima[i]);

        // Token-major symbols: row t holds the channels of token t; rows past the tokens are padding (the zero symbol).
        symbols[(tokens * channels)..(runLength * channels)].Fill((byte)levels);
        for (var h = 0; h < heads; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                FloatConversion.ToSingle(values.Slice(((h * tokens) + t) * width, width), floats);
                var tokenScale = scaling == CacheGenScaling.PerToken ? (float)scales[t] : 0f;
                var tokenFactor = tokenScale > 0 ? levels / tokenScale : 0f;
                var row = symbols.Slice((t * channels) + (h * width), width);
                for (var d = 0; d < width; d++)
                {
                    float factor;
                    if (scaling == CacheGenScaling.PerToken)
                    {
                        factor = tokenFactor;
                    }
                    else
                    {
                        var sc = (float)scales[(h * width) + d];
                        factor = sc > 0 ? levels / sc : 0f;
                    }

                    var q = (int)MathF.Round(floats[d] * factor, MidpointRounding.ToEven);
                    row[d] = (byte)(Math.Clamp(q, -levels, levels) + levels);
                }
            }
        }
    }

    /// <summary>Reconstructs a section ([head][token][width]) from token-major symbols and scales.</summary>
    /// <remarks>An element is ((symbol − B) · step) rounded to fp16, with step = scale · (1 / B) in fp32 (per token or
    /// per channel): exact integer, then one fp32 product, then round-to-nearest-even to fp16, so that every decoder
    /// reconstructs the same bits.</remarks>
    public static void Dequantize(ReadOnlySpan<byte> symbols, ReadOnlySpan<Half> scales, in KvSectionShape shape, CacheGenScaling scaling, int levels, Span<Half> destination)
    {
        if (scaling == CacheGenScaling.PerToken)
            DequantizePerToken(symbols, scales, shape, levels, destination);
        else
            DequantizePerChannel(symbols, scales, shape, levels, destination);
    }

    /// <summary>
    /// A token has one step, so its elements take only 2B + 1 values: they are converted to fp16 once into a table
    /// and each element is a lookup, instead of a widening, a product and a conversion per element.
    /// </summary>
    private static void DequantizePerToken(ReadOnlySpan<byte> symbols, ReadOnlySpan<Half> scales, in KvSectionShape shape, int levels, Span<Half> destination)
    {
        var tokens = shape.Tokens;
        var width = shape.Width;
        var heads = shape.Heads;
        var channels = shape.Channels;
        var alphabet = (2 * levels) + 1;
        var inverseLevels = 1f / levels;
        if (symbols.Length < tokens * channels || destination.Length < tokens * channels)
            throw new ArgumentException($"A section of {tokens} tokens × {channels} channels does not fit the buffers.");
        // 256 entries cover every byte, so a lookup can never leave the table; symbols above the alphabet are refused
        // by the entropy tables before they get here.
        Span<Half> table = stackalloc Half[256];
        table.Clear();
        ref var lut = ref MemoryMarshal.GetReference(table);
        ref var source = ref MemoryMarshal.GetReference(symbols);
        ref var target = ref MemoryMarshal.GetReference(destination);
        for (var t = 0; t < tokens; t++)
        {
            var step = (float)scales[t] * inverseLevels;
            for (var k = 0; k < alphabet; k++)
                Unsafe.Add(ref lut, k) = (Half)((k - levels) * step);
            ref var row = ref Unsafe.Add(ref source, t * channels);
            for (var h = 0; h < heads; h++)
            {
                ref var from = ref Unsafe.Add(ref row, h * width);
                ref var to = ref Unsafe.Add(ref target, ((h * tokens) + t) * width);
                var d = 0;
                for (; d <= width - 4; d += 4)
                {
                    Unsafe.Add(ref to, d) = Unsafe.Add(ref lut, Unsafe.Add(ref from, d));
                    Unsafe.Add(ref to, d + 1) = Unsafe.Add(ref lut, Unsafe.Add(ref from, d + 1));
                    Unsafe.Add(ref to, d + 2) = Unsafe.Add(ref lut, Unsafe.Add(ref from, d + 2));
                    Unsafe.Add(ref to, d + 3) = Unsafe.Add(ref lut, Unsafe.Add(ref from, d + 3));
                }

                for (; d < width; d++)
                    Unsafe.Add(ref to, d) = Unsafe.Add(ref lut, Unsafe.Add(ref from, d));
            }
        }
    }

    private static void DequantizePerChannel(ReadOnlySpan<byte> symbols, ReadOnlySpan<Half> scales, in KvSectionShape shape, int levels, Span<Half> destination)
    {
        var tokens = shape.Tokens;
        var width = shape.Width;
        var heads = shape.Heads;
        var channels = shape.Channels;
        var inverseLevels = 1f / levels;
        // A token's row is widened and scaled in fp32 with vector loads, then converted to fp16 a head at a time.
        var steps = new float[channels];
        for (var c = 0; c < channels; c++)
            steps[c] = (float)scales[c] * inverseLevels;
        Span<float> row = channels <= 4096 ? stackalloc float[channels] : new float[channels];
        for (var t = 0; t < tokens; t++)
        {
            CenteredSymbols(symbols.Slice(t * channels, channels), levels, row);
            TensorPrimitives.Multiply(row, steps, row);
            for (var h = 0; h < heads; h++)
                TensorPrimitives.ConvertToHalf(row.Slice(h * width, width), destination.Slice(((h * tokens) + t) * width, width));
        }
    }

    /// <summary>symbol − <paramref name="levels"/> for each symbol, as fp32 (exact).</summary>
    private static void CenteredSymbols(ReadOnlySpan<byte> symbols, int levels, Span<float> destination)
    {
        var n = symbols.Length;
        var i = 0;
        ref var src = ref MemoryMarshal.GetReference(symbols);
        ref var dst = ref MemoryMarshal.GetReference(destination[..n]);
        if (Vector256.IsHardwareAccelerated)
        {
            var center = Vector256.Create(levels);
            for (; i <= n - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                var (a, b) = Vector256.Widen(low);
                var (c, d) = Vector256.Widen(high);
                Vector256.ConvertToSingle(a.AsInt32() - center).StoreUnsafe(ref dst, (nuint)i);
                Vector256.ConvertToSingle(b.AsInt32() - center).StoreUnsafe(ref dst, (nuint)(i + 8));
                Vector256.ConvertToSingle(c.AsInt32() - center).StoreUnsafe(ref dst, (nuint)(i + 16));
                Vector256.ConvertToSingle(d.AsInt32() - center).StoreUnsafe(ref dst, (nuint)(i + 24));
            }
        }

        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = Unsafe.Add(ref src, i) - levels;
    }

    /// <summary>The largest error of an element quantized under <paramref name="scale"/> with <paramref name="levels"/>,
    /// before the fp16 rounding of the reconstruction.</summary>
    public static float ErrorBound(float scale, int levels) => scale / (2f * levels);

    /// <summary>The smallest fp16 value at or above <paramref name="m"/> (so that no value is clipped).</summary>
    private static Half ScaleAtLeast(float m)
    {
        var h = (Half)m;
        if ((float)h < m)
            h = BitConverter.UInt16BitsToHalf((ushort)(BitConverter.HalfToUInt16Bits(h) + 1));
        return h;
    }
}
