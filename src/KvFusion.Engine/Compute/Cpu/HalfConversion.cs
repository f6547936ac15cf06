using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>
/// Vectorized fp16/bf16 → fp32 conversion. .NET exposes no F16C intrinsic, so fp16 uses the exact bit trick:
/// shift the exponent and mantissa into place and multiply by 2^112, which also handles subnormals (weights hold no
/// infinities or NaNs; those would come out as large finite values).
/// </summary>
internal static unsafe class HalfConversion
{
    private static readonly Vector256<float> Magic = Vector256.Create(5.192296858534828e33f); // 2^112

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HalfToSingle(Vector128<ushort> h)
    {
        var w = Avx2.ConvertToVector256Int32(h).AsUInt32();
        var sign = Avx2.ShiftLeftLogical(w & Vector256.Create(0x8000u), 16);
        var body = Avx2.ShiftLeftLogical(w & Vector256.Create(0x7FFFu), 13);
        var f = Avx.Multiply(body.AsSingle(), Magic);
        return (f.AsUInt32() | sign).AsSingle();
    }

    private static readonly Vector512<float> Magic512 = Vector512.Create(5.192296858534828e33f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> HalfToSingle(Vector256<ushort> h)
    {
        var w = Avx512F.ConvertToVector512UInt32(h);
        var sign = Avx512F.ShiftLeftLogical(w & Vector512.Create(0x8000u), 16);
        var body = Avx512F.ShiftLeftLogical(w & Vector512.Create(0x7FFFu), 13);
        var f = Avx512F.Multiply(body.AsSingle(), Magic512);
        return (f.AsUInt32() | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BFloatToSingle(Vector128<ushort> h) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(h).AsUInt32(), 16).AsSingle();

    /// <summary>Loads 8 elements of a weight row of any float dtype as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(void* p, TensorDType dtype, long index) => dtype switch
    {
        TensorDType.F16 => HalfToSingle(Vector128.Load((ushort*)p + index)),
        TensorDType.BF16 => BFloatToSingle(Vector128.Load((ushort*)p + index)),
        _ => Vector256.Load((float*)p + index),
    };

    /// <summary>Reads one element of any float dtype.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(void* p, TensorDType dtype, long index) => dtype switch
    {
        TensorDType.F16 => (float)((Half*)p)[index],
        TensorDType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)p)[index] << 16),
        _ => ((float*)p)[index],
    };

    /// <summary>Converts <paramref name="count"/> elements to float32.</summary>
    public static void ToSingle(void* source, TensorDType dtype, long offset, float* destination, int count)
    {
        var i = 0;
        if (Avx2.IsSupported)
        {
            for (; i <= count - 8; i += 8)
            {
                Load8(source, dtype, offset + i).Store(destination + i);
            }
        }

        for (; i < count; i++)
        {
            destination[i] = Load1(source, dtype, offset + i);
        }
    }
}
