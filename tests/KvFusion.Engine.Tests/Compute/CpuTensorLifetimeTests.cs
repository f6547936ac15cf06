using System.Runtime.CompilerServices;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tests.Compute;

/// <summary>Runs alone: the live-bytes counter is process-wide, and other tests allocate tensors all the time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeMemoryCountingGroup
{
    public const string Name = "native memory counting";
}

/// <summary>Owned CPU tensor memory is freed by Dispose, and by the finalizer when Dispose is forgotten.</summary>
[Collection(NativeMemoryCountingGroup.Name)]
public sealed unsafe class CpuTensorLifetimeTests
{
    private const int Rows = 512;
    private const int Cols = 1024;
    private const long Bytes = (long)Rows * Cols * sizeof(float);

    [Fact]
    public void A_tensor_dropped_without_Dispose_has_its_native_memory_freed_after_a_collection()
    {
        Settle();
        var before = CpuTensor.LiveNativeBytes;
        var tensor = AllocateAndDrop();
        for (var i = 0; i < 10 && CpuTensor.LiveNativeBytes > before; i++)
        {
            Settle();
        }

        Assert.False(tensor.IsAlive);
        Assert.Equal(before, CpuTensor.LiveNativeBytes);
    }

    [Fact]
    public void Dispose_frees_the_memory_at_once_and_twice_is_harmless()
    {
        Settle();
        var before = CpuTensor.LiveNativeBytes;
        var t = CpuTensor.Allocate(TensorDType.F32, Rows, Cols);
        Assert.Equal(before + Bytes, CpuTensor.LiveNativeBytes);
        t.Dispose();
        Assert.Equal(before, CpuTensor.LiveNativeBytes);
        t.Dispose();
        Assert.Equal(before, CpuTensor.LiveNativeBytes);
        Assert.Throws<ObjectDisposedException>(() => (nint)t.Data);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference AllocateAndDrop()
    {
        var t = CpuTensor.Allocate(TensorDType.F32, Rows, Cols);
        return new WeakReference(t);
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
