using System.Runtime.Intrinsics.X86;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Compute;

/// <summary>Vectorized conversions between fp16 and fp32 on the host (stored KV is fp16, the engine computes in fp32).</summary>
internal static class FloatConversion
{
    /// <summary>Converts fp16 values to fp32.</summary>
    public static unsafe void ToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("Destination is shorter than the source.", nameof(destination));
        }

        if (!Avx2.IsSupported)
        {
            for (var i = 0; i < source.Length; i++)
            {
                destination[i] = (float)source[i];
            }

            return;
        }

        fixed (Half* s = source)
        fixed (float* d = destination)
        {
            HalfConversion.ToSingle(s, TensorDType.F16, 0, d, source.Length);
        }
    }
}
