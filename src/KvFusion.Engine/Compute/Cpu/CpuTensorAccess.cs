namespace KvFusion.Engine.Compute.Cpu;

/// <summary>Raw byte access to CPU tensors, for tests and loaders that fill tensors of any dtype.</summary>
internal static unsafe class CpuTensorAccessExtensions
{
    /// <summary>Copies raw bytes into the start of a CPU tensor.</summary>
    public static void CopyFrom(this CpuTensor tensor, byte* source, long bytes)
    {
        if (bytes > tensor.ByteCount)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), $"{bytes} bytes exceed the tensor's {tensor.ByteCount}.");
        }

        Buffer.MemoryCopy(source, tensor.Data, tensor.ByteCount, bytes);
    }
}
