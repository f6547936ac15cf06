using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace KvFusion.Cache.Codecs.Fp8;

/// <summary>
/// The OCP / NVIDIA fp8 "e4m3fn" format: 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; no infinities;
/// S.1111.111 is NaN, so the largest finite magnitude is 448 (S.1111.110). Subnormals (exponent 0) step by 2^-9.
/// Also the fp16 ↔ fp32 conversions the fp8 codec runs in vectors.
/// </summary>
internal static class E4M3
{
    /// <summary>The largest finite magnitude.</summary>
    public const float MaxValue = 448f;

    /// <summary>The smallest normal magnitude, 2^-6.</summary>
    public const float MinNormal = 1f / 64;

    /// <summary>The subnormal step, 2^-9.</summary>
    public const float SubnormalStep = 1f / 512;

    // Float bits of 2^-6: below it a magnitude rounds on the subnormal grid.
    private const uint MinNormalBits = (127 - 6) << 23;

    // Adding 2^14 (whose ulp is 2^-9) rounds a magnitude below 2^-6 to the subnormal grid by the FPU's own RNE.
    private const float SubnormalMagic = 16384f;
    private const uint SubnormalMagicBits = (127 + 14) << 23;

    // Rebias from fp32's exponent 127 to e4m3's 7, with the float mantissa's top 3 bits kept (bits >> 20).
    private const uint NormalRebias = (127 - 7) << 3;

    /// <summary>Every code's value (NaN for 0x7F and 0xFF), for table-driven decoding.</summary>
    public static ReadOnlySpan<float> Values => s_values;

    private static readonly float[] s_values = BuildValues();

    /// <summary>Whether a code is one of the two NaN codes, which the encoder never writes.</summary>
    public static bool IsNaN(byte code) => (code & 0x7F) == 0x7F;

    /// <summary>The value of a code.</summary>
    public static float ToSingle(byte code)
    {
        var magnitude = code & 0x7F;
        float value;
        if (magnitude == 0x7F)
        {
            value = float.NaN;
        }
        else if (magnitude < 0x08)
        {
            value = magnitude * SubnormalStep;
        }
        else
        {
            value = BitConverter.UInt32BitsToSingle((uint)(magnitude + NormalRebias) << 20);
        }

        return (code & 0x80) != 0 ? -value : value;
    }

    /// <summary>Rounds a finite value to the nearest code, ties to even; magnitudes above 448 saturate to 448.</summary>
    public static byte FromSingle(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        var sign = (bits >> 24) & 0x80;
        var magnitude = MathF.Min(MathF.Abs(value), MaxValue);
        var abs = BitConverter.SingleToUInt32Bits(magnitude);
        uint code;
        if (abs < MinNormalBits)
        {
            code = BitConverter.SingleToUInt32Bits(magnitude + SubnormalMagic) - SubnormalMagicBits;
        }
        else
        {
            // Round the 23-bit mantissa to 3 bits, ties to even, carrying into the exponent when it overflows.
            code = ((abs + 0x7FFFF + ((abs >> 20) & 1)) >> 20) - NormalRebias;
        }

        return (byte)(code | sign);
    }

    /// <summary>Vector form of <see cref="FromSingle(float)"/> on 8 values (codes in the low byte of each lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> FromSingle(Vector256<float> value)
    {
        var bits = value.AsUInt32();
        var sign = Vector256.ShiftRightLogical(bits, 24) & Vector256.Create(0x80u);
        var magnitude = Vector256.Min(Vector256.Abs(value), Vector256.Create(MaxValue));
        var abs = magnitude.AsUInt32();
        var subnormal = (magnitude + Vector256.Create(SubnormalMagic)).AsUInt32() - Vector256.Create(SubnormalMagicBits);
        var odd = Vector256.ShiftRightLogical(abs, 20) & Vector256<uint>.One;
        var normal = Vector256.ShiftRightLogical(abs + Vector256.Create(0x7FFFFu) + odd, 20) - Vector256.Create(NormalRebias);
        var isSubnormal = Vector256.LessThan(abs, Vector256.Create(MinNormalBits));
        return Vector256.ConditionalSelect(isSubnormal, subnormal, normal) | sign;
    }

    /// <summary>fp16 bits (in the low 16 bits of each lane) to float, exact for every finite value (the caller rejects exponent 31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HalfToSingle(Vector256<uint> half)
    {
        // Moving exponent and mantissa into float position and scaling by 2^112 rebiases normals and renormalizes
        // subnormals in one exact multiply.
        var magnitude = Vector256.ShiftLeft(half & Vector256.Create(0x7FFFu), 13).AsSingle() * Vector256.Create(0x77800000u).AsSingle();
        var sign = Vector256.ShiftLeft(half & Vector256.Create(0x8000u), 16);
        return (magnitude.AsUInt32() | sign).AsSingle();
    }

    /// <summary>Float to fp16 bits, round to nearest even (Giesen's float_to_half_fast3_rtne), for |x| ≤ 65504·(1 + 2^-11).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> SingleToHalf(Vector256<float> value)
    {
        var bits = value.AsUInt32();
        var sign = bits & Vector256.Create(0x80000000u);
        var abs = bits ^ sign;
        // Below 2^-14 the result is subnormal: adding 0.5 rounds the magnitude onto the 2^-24 grid.
        var subnormal = (abs.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(0.5f).AsUInt32();
        var odd = Vector256.ShiftRightLogical(abs, 13) & Vector256<uint>.One;
        var normal = Vector256.ShiftRightLogical(abs + Vector256.Create(unchecked((uint)((15 - 127) << 23)) + 0xFFFu) + odd, 13);
        var isSubnormal = Vector256.LessThan(abs, Vector256.Create(113u << 23));
        var half = Vector256.ConditionalSelect(isSubnormal, subnormal, normal);
        // Magnitudes that round past 65504 become infinity, as a scalar conversion would.
        half = Vector256.Min(half, Vector256.Create(0x7C00u));
        return half | Vector256.ShiftRightLogical(sign, 16);
    }

    private static float[] BuildValues()
    {
        var values = new float[256];
        for (var c = 0; c < values.Length; c++)
        {
            values[c] = ToSingle((byte)c);
        }

        return values;
    }
}
