using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvFusion.Engine.Compute.Cpu;

/// <summary>Vectorized transcendental helpers (exp) accurate to a few ulp, for softmax and SiLU.</summary>
internal static class VectorMath
{
    /// <summary>e^x for 8 floats (Cephes-style: 2^n · polynomial on the reduced argument).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Avx.Min(x, Vector256.Create(88.3762626647949f));
        x = Avx.Max(x, Vector256.Create(-87.3365447504019f));
        var fx = Fma.MultiplyAdd(x, Vector256.Create(1.44269504088896341f), Vector256.Create(0.5f));
        fx = Avx.RoundToNegativeInfinity(fx);
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(0.693359375f), x);
        x = Fma.MultiplyAddNegated(fx, Vector256.Create(-2.12194440e-4f), x);
        var z = x * x;
        var y = Vector256.Create(1.9875691500E-4f);
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.3981999507E-3f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(8.3334519073E-3f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(4.1665795894E-2f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(1.6666665459E-1f));
        y = Fma.MultiplyAdd(y, x, Vector256.Create(5.0000001201E-1f));
        y = Fma.MultiplyAdd(y, z, x) + Vector256.Create(1f);
        var n = Avx.ConvertToVector256Int32(fx);
        var pow2 = Avx2.ShiftLeftLogical(n + Vector256.Create(127), 23).AsSingle();
        return y * pow2;
    }
}
