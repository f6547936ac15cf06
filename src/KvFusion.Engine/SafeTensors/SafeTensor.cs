using KvFusion.Engine.Models;

namespace KvFusion.Engine.SafeTensors;

/// <summary>
/// One tensor inside a memory-mapped safetensors file. The data pointer stays valid while the owning
/// <see cref="SafeTensorsFile"/> is open.
/// </summary>
internal readonly unsafe struct SafeTensor
{
    internal SafeTensor(string name, TensorDType dtype, int[] shape, byte* data, long byteLength, string file)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
        ByteLength = byteLength;
        File = file;
    }

    /// <summary>The tensor's name in the checkpoint.</summary>
    public string Name { get; }

    /// <summary>Element type as stored.</summary>
    public TensorDType DType { get; }

    /// <summary>Shape as stored (row-major).</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>Pointer to the first byte of the tensor in the mapping.</summary>
    public byte* Data { get; }

    /// <summary>Size in bytes.</summary>
    public long ByteLength { get; }

    /// <summary>The file the tensor lives in.</summary>
    public string File { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount => ByteLength / DType.SizeInBytes();

    /// <summary>The bytes of the tensor.</summary>
    public ReadOnlySpan<byte> Bytes => ByteLength <= int.MaxValue
        ? new ReadOnlySpan<byte>(Data, (int)ByteLength)
        : throw new InvalidOperationException($"Tensor '{Name}' is larger than 2 GiB; read it through the pointer.");

    /// <summary>Throws a <see cref="ModelLoadException"/> unless the shape is exactly <paramref name="expected"/>.</summary>
    public void EnsureShape(params int[] expected)
    {
        var ok = Shape.Count == expected.Length;
        for (var i = 0; ok && i < expected.Length; i++)
        {
            ok = Shape[i] == expected[i];
        }

        if (!ok)
        {
            throw new ModelLoadException(
                $"Tensor '{Name}' in {File} has shape [{string.Join(", ", Shape)}]; the config requires [{string.Join(", ", expected)}].")
            {
                FilePath = File,
                TensorName = Name,
            };
        }
    }
}
