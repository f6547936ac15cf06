namespace KvFusion.Engine.Models;

/// <summary>Element types of tensors that the engine reads, stores and computes with.</summary>
public enum TensorDType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,

    /// <summary>IEEE 754 binary16.</summary>
    F16,

    /// <summary>bfloat16: the upper half of a binary32.</summary>
    BF16,

    /// <summary>32-bit signed integer (token ids, positions, row indices).</summary>
    I32,
}

/// <summary>Helpers for <see cref="TensorDType"/>.</summary>
public static class TensorDTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown tensor dtype."),
    };

    /// <summary>Parses a safetensors dtype name (F32, F16, BF16, I32).</summary>
    public static bool TryParseSafeTensors(string name, out TensorDType dtype)
    {
        switch (name)
        {
            case "F32": dtype = TensorDType.F32; return true;
            case "F16": dtype = TensorDType.F16; return true;
            case "BF16": dtype = TensorDType.BF16; return true;
            case "I32": dtype = TensorDType.I32; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The safetensors name of the dtype.</summary>
    public static string ToSafeTensorsName(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        TensorDType.BF16 => "BF16",
        TensorDType.I32 => "I32",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown tensor dtype."),
    };
}
