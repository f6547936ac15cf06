using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace KvFusion.Cache.Codecs.Fp8;

/// <summary>
/// Lossy: every value becomes one fp8 e4m3 code (see <see cref="E4M3"/>) of the value divided by its token's scale,
/// rounded to nearest even; one fp32 scale per token, shared by all heads of the section.
/// </summary>
/// <remarks>
/// <para>The scale of token t is <c>max |x| / 448</c> over the token's values in every head (so the largest maps to
/// 448, the largest finite e4m3 magnitude), computed in fp32; a token whose values are all zero gets scale 0 and
/// codes that keep only the zeros' signs. Scales are fp32 rather than fp16 so that the decoder multiplies by exactly
/// the scale the encoder divided by, with no range or rounding cases of their own; they cost 4 bytes per token,
/// 3% of the codes at 128 channels per token.</para>
/// <para>Payload layout (T = tokens, n = heads × tokens × width):</para>
/// <list type="number">
/// <item>T scales, fp32 little-endian, token 0 first. Each is finite, non-negative (+0 only for an all-zero token)
/// and at most 65504 / 448 (the fp16 maximum over 448).</item>
/// <item>n codes, one byte per value in the section's own order ([head][token][width]). The NaN codes 0x7F and 0xFF
/// never occur.</item>
/// </list>
/// <para>The payload is exactly 4T + n bytes. A value decodes to <c>(fp16)(e4m3(code) × scale)</c> with the
/// product in fp32. Inputs must be finite: the engine never stores non-finite K/V, so encoding one is an
/// <see cref="ArgumentException"/>. <see cref="ErrorBound"/> bounds every element's error.</para>
/// </remarks>
internal sealed class Fp8Codec : KvSectionCodec
{
    /// <summary>The largest scale a payload may carry: that of a token whose largest magnitude is fp16's maximum.</summary>
    public const float MaxScale = 65504f / E4M3.MaxValue;

    private Fp8Codec() { }

    /// <summary>The codec (it has no parameters).</summary>
    public static Fp8Codec Instance { get; } = new();

    /// <inheritdoc />
    public override KvCodecSpec Spec => KvCodecSpec.Fp8;

    /// <inheritdoc />
    public override int ParametersLength => 0;

    /// <inheritdoc />
    public override void WriteParameters(Span<byte> destination) { }

    /// <inheritdoc />
    public override long MaxEncodedLength(in KvSectionShape shape) => PayloadLength(shape);

    /// <summary>The scale the encoder gives a token whose largest magnitude is <paramref name="maxMagnitude"/>.</summary>
    public static float TokenScale(float maxMagnitude) => maxMagnitude / E4M3.MaxValue;

    /// <summary>
    /// An upper bound of <c>|decoded - value|</c> for a finite <paramref name="value"/> coded with token scale
    /// <paramref name="scale"/> (<see cref="TokenScale"/> of the token's largest magnitude).
    /// </summary>
    /// <remarks>
    /// e4m3 rounding errs by at most 2^-4 of the scaled value for normals and half the subnormal step (2^-10) for
    /// subnormals, both times the scale; dividing by the scale in fp32 adds 2^-22 relative. The product is then
    /// rounded to fp16: 2^-11 relative plus half of fp16's smallest step, 2^-25.
    /// </remarks>
    public static double ErrorBound(float value, float scale)
    {
        if (scale == 0)
        {
            return 0;
        }

        var x = Math.Abs((double)value);
        var fp8 = (x * ((1.0 / 16) + Pow2(-22)) * (1 + Pow2(-22))) + (scale * Pow2(-10));
        var reconstructed = x + fp8;
        return fp8 + (reconstructed * (Pow2(-11) + Pow2(-23))) + Pow2(-25);
    }

    /// <inheritdoc />
    public override KvSectionEncoding Encode(ReadOnlySpan<Half> values, in KvSectionShape shape, Span<byte> destination)
    {
        if (values.Length != shape.ValueCount)
        {
            throw new ArgumentException($"The section holds {values.Length} values, its shape {shape.ValueCount}.", nameof(values));
        }

        var length = PayloadLength(shape);
        if (length > int.MaxValue)
        {
            throw new ArgumentException($"A section of {shape.ValueCount} values exceeds the fp8 codec's limit.", nameof(shape));
        }

        if (destination.Length < length)
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes; MaxEncodedLength is {length}.", nameof(destination));
        }

        var (heads, tokens, width) = (shape.Heads, shape.Tokens, shape.Width);
        var bits = MemoryMarshal.Cast<Half, ushort>(values);
        var scaleBytes = destination[..(tokens * sizeof(float))];
        var codes = destination.Slice(tokens * sizeof(float), values.Length);
        for (var t = 0; t < tokens; t++)
        {
            var max = 0;
            for (var h = 0; h < heads; h++)
            {
                max = Math.Max(max, MaxMagnitudeBits(bits.Slice(((h * tokens) + t) * width, width)));
            }

            if (max >= 0x7C00)
            {
                throw new ArgumentException($"Token {t} of a {shape.Kind} section of layer {shape.Layer} holds a non-finite value; fp8 codes finite K/V only.", nameof(values));
            }

            var maxMagnitude = (float)BitConverter.UInt16BitsToHalf((ushort)max);
            var scale = TokenScale(maxMagnitude);
            BinaryPrimitives.WriteSingleLittleEndian(scaleBytes[(t * sizeof(float))..], scale);
            // An all-zero token has scale 0; a zero factor keeps the codes at signed zeros.
            var inverse = max == 0 ? 0f : E4M3.MaxValue / maxMagnitude;
            for (var h = 0; h < heads; h++)
            {
                var offset = ((h * tokens) + t) * width;
                EncodeRow(bits.Slice(offset, width), inverse, codes.Slice(offset, width));
            }
        }

        return new KvSectionEncoding((int)length, 0);
    }

    /// <inheritdoc />
    public override void Decode(ReadOnlySpan<byte> payload, in KvSectionShape shape, Span<Half> destination)
    {
        if (shape.Heads < 0 || shape.Tokens < 0 || shape.Width < 0)
        {
            throw new KvCodecException($"An fp8 section cannot have the shape {shape.Heads}x{shape.Tokens}x{shape.Width}.");
        }

        var length = PayloadLength(shape);
        if (payload.Length != length)
        {
            throw new KvCodecException($"An fp8 section of {shape.Tokens} tokens and {shape.ValueCount} values must be {length} bytes; it is {payload.Length}.");
        }

        var (heads, tokens, width) = (shape.Heads, shape.Tokens, shape.Width);
        var n = (int)shape.ValueCount;
        if (destination.Length < n)
        {
            throw new ArgumentException($"The destination holds {destination.Length} values; the section has {n}.", nameof(destination));
        }

        var scaleBytes = payload[..(tokens * sizeof(float))];
        var codes = payload.Slice(tokens * sizeof(float), n);
        var output = MemoryMarshal.Cast<Half, ushort>(destination[..n]);
        for (var t = 0; t < tokens; t++)
        {
            var scale = BinaryPrimitives.ReadSingleLittleEndian(scaleBytes[(t * sizeof(float))..]);
            // The negated comparison also rejects NaN; -0 has its sign bit set and is rejected too.
            if (!(scale <= MaxScale) || BitConverter.SingleToUInt32Bits(scale) >= 0x80000000u)
            {
                throw new KvCodecException($"Token {t} of an fp8 section has scale {scale}; scales are in [0, {MaxScale}].");
            }

            for (var h = 0; h < heads; h++)
            {
                var offset = ((h * tokens) + t) * width;
                if (!DecodeRow(codes.Slice(offset, width), scale, output.Slice(offset, width)))
                {
                    throw new KvCodecException($"Token {t} of head {h} of an fp8 section holds a NaN code, which the encoder never writes.");
                }
            }
        }
    }

    private static double Pow2(int exponent) => Math.ScaleB(1.0, exponent);

    private static long PayloadLength(in KvSectionShape shape) => ((long)shape.Tokens * sizeof(float)) + shape.ValueCount;

    /// <summary>The largest of <c>bits &amp; 0x7FFF</c>: the largest magnitude, or 0x7C00 and above for a non-finite value.</summary>
    private static int MaxMagnitudeBits(ReadOnlySpan<ushort> bits)
    {
        ref var src = ref MemoryMarshal.GetReference(bits);
        var n = bits.Length;
        var i = 0;
        var max = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<ushort>.Count)
        {
            var acc = Vector256<ushort>.Zero;
            for (; i <= n - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                acc = Vector256.Max(acc, Vector256.LoadUnsafe(ref src, (nuint)i) & Vector256.Create((ushort)0x7FFF));
            }

            var (a, b) = Vector256.Widen(acc);
            var wide = Vector256.Max(a, b);
            for (var k = 0; k < Vector256<uint>.Count; k++)
            {
                max = Math.Max(max, (int)wide.GetElement(k));
            }
        }

        for (; i < n; i++)
        {
            max = Math.Max(max, Unsafe.Add(ref src, i) & 0x7FFF);
        }

        return max;
    }

    private static void EncodeRow(ReadOnlySpan<ushort> bits, float inverse, Span<byte> codes)
    {
        ref var src = ref MemoryMarshal.GetReference(bits);
        ref var dst = ref MemoryMarshal.GetReference(codes);
        var n = bits.Length;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var factor = Vector256.Create(inverse);
            for (; i <= n - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                var (a, b) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                var (c, d) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)(i + Vector256<ushort>.Count)));
                var ca = E4M3.FromSingle(E4M3.HalfToSingle(a) * factor);
                var cb = E4M3.FromSingle(E4M3.HalfToSingle(b) * factor);
                var cc = E4M3.FromSingle(E4M3.HalfToSingle(c) * factor);
                var cd = E4M3.FromSingle(E4M3.HalfToSingle(d) * factor);
                Vector256.Narrow(Vector256.Narrow(ca, cb), Vector256.Narrow(cc, cd)).StoreUnsafe(ref dst, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref dst, i) = E4M3.FromSingle((float)BitConverter.UInt16BitsToHalf(Unsafe.Add(ref src, i)) * inverse);
        }
    }

    /// <summary>Decodes one row; false when it meets a NaN code.</summary>
    private static bool DecodeRow(ReadOnlySpan<byte> codes, float scale, Span<ushort> output)
    {
        ref var src = ref MemoryMarshal.GetReference(codes);
        ref var dst = ref MemoryMarshal.GetReference(output);
        var n = codes.Length;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // The vector form computes each code's value from its bits, equal to the table for every non-NaN code
            // and cheaper than gathering from it; the table serves the tail.
            var factor = Vector256.Create(scale);
            var nan = Vector256<byte>.Zero;
            for (; i <= n - Vector256<byte>.Count; i += Vector256<byte>.Count)
            {
                var v = Vector256.LoadUnsafe(ref src, (nuint)i);
                nan |= Vector256.Equals(v & Vector256.Create((byte)0x7F), Vector256.Create((byte)0x7F));
                var (lo, hi) = Vector256.Widen(v);
                var (a, b) = Vector256.Widen(lo);
                var (c, d) = Vector256.Widen(hi);
                var ha = E4M3.SingleToHalf(CodeToSingle(a) * factor);
                var hb = E4M3.SingleToHalf(CodeToSingle(b) * factor);
                var hc = E4M3.SingleToHalf(CodeToSingle(c) * factor);
                var hd = E4M3.SingleToHalf(CodeToSingle(d) * factor);
                Vector256.Narrow(ha, hb).StoreUnsafe(ref dst, (nuint)i);
                Vector256.Narrow(hc, hd).StoreUnsafe(ref dst, (nuint)(i + Vector256<ushort>.Count));
            }

            if (nan != Vector256<byte>.Zero)
            {
                return false;
            }
        }

        var table = E4M3.Values;
        for (; i < n; i++)
        {
            var code = Unsafe.Add(ref src, i);
            if (E4M3.IsNaN(code))
            {
                return false;
            }

            Unsafe.Add(ref dst, i) = BitConverter.HalfToUInt16Bits((Half)(table[code] * scale));
        }

        return true;
    }

    /// <summary>The value of each (non-NaN) code in the low byte of a lane, as <see cref="E4M3.Values"/> gives it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> CodeToSingle(Vector256<uint> code)
    {
        var magnitude = code & Vector256.Create(0x7Fu);
        var normal = Vector256.ShiftLeft(magnitude + Vector256.Create((127u - 7) << 3), 20).AsSingle();
        var subnormal = Vector256.ConvertToSingle(magnitude.AsInt32()) * Vector256.Create(E4M3.SubnormalStep);
        var isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(8u));
        var value = Vector256.ConditionalSelect(isSubnormal.AsSingle(), subnormal, normal);
        return (value.AsUInt32() | Vector256.ShiftLeft(code & Vector256.Create(0x80u), 24)).AsSingle();
    }
}
