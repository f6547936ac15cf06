using System.Numerics.Tensors;
using KvFusion.Engine.Compute;

namespace KvFusion.Cache.Codecs.CacheGen;

/// <summary>
/// The quantization step of the cachegen codec: max-abs scales (per token or per channel) and <c>2B + 1</c> uniform
/// levels, q = round(x / scale · B) in [-B, B], stored as the symbol q + B. Symbols are laid out channel-major,
/// [channel][run] with channel = head · width + dim and a run of <c>runLength</c> ≥ tokens symbols (the padding after
/// the tokens is the zero symbol B), so that each channel is coded with its own statistics.
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

    /// <summary>Quantizes a section's values ([head][token][width]) into channel-major symbols and fp16 scales.</summary>
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

        symbols[..(channels * runLength)].Fill((byte)levels);
        for (var h = 0; h < heads; h++)
        {
            for (var t = 0; t < tokens; t++)
            {
                FloatConversion.ToSingle(values.Slice(((h * tokens) + t) * width, width), floats);
                var tokenScale = scaling == CacheGenScaling.PerToken ? (float)scales[t] : 0f;
                var tokenFactor = tokenScale > 0 ? levels / tokenScale : 0f;
                for (var d = 0; d < width; d++)
                {
                    var c = (h * width) + d;
                    float factor;
                    if (scaling == CacheGenScaling.PerToken)
                    {
                        factor = tokenFactor;
                    }
                    else
                    {
                        var s = (float)scales[c];
                        factor = s > 0 ? levels / s : 0f;
                    }

                    var q = (int)MathF.Round(floats[d] * factor, MidpointRounding.ToEven);
                    symbols[(c * runLength) + t] = (byte)(Math.Clamp(q, -levels, levels) + levels);
                }
            }
        }
    }

    /// <summary>Reconstructs a section ([head][token][width]) from channel-major symbols and scales.</summary>
    public static void Dequantize(ReadOnlySpan<byte> symbols, ReadOnlySpan<Half> scales, in KvSectionShape shape, CacheGenScaling scaling, int levels, int runLength, Span<Half> destination)
    {
        var tokens = shape.Tokens;
        var width = shape.Width;
        var heads = shape.Heads;
        var inverseLevels = 1f / levels;
        // Rows are reconstructed in fp32 and converted to fp16 a row at a time (vectorized), not value by value.
        Span<float> row = width <= 1024 ? stackalloc float[width] : new float[width];
        Span<float> channelSteps = width <= 1024 ? stackalloc float[width] : new float[width];
        for (var h = 0; h < heads; h++)
        {
            if (scaling == CacheGenScaling.PerChannel)
            {
                for (var d = 0; d < width; d++)
                    channelSteps[d] = (float)scales[(h * width) + d] * inverseLevels;
            }

            var headSymbols = symbols.Slice(h * width * runLength, width * runLength);
            for (var t = 0; t < tokens; t++)
            {
                if (scaling == CacheGenScaling.PerToken)
                {
                    var step = (float)scales[t] * inverseLevels;
                    for (var d = 0; d < width; d++)
                        row[d] = (headSymbols[(d * runLength) + t] - levels) * step;
                }
                else
                {
                    for (var d = 0; d < width; d++)
                        row[d] = (headSymbols[(d * runLength) + t] - levels) * channelSteps[d];
                }

                TensorPrimitives.ConvertToHalf(row, destination.Slice(((h * tokens) + t) * width, width));
            }
        }
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
