namespace KvFusion.Engine.Compute;

/// <summary>
/// Shape checks every backend makes, in the same words (dtypes and ownership are each backend's own): a backend
/// calls these before it touches memory, so bad input fails the same way on the CPU and on a GPU.
/// </summary>
internal static class BackendArguments
{
    /// <summary>Throws unless 0 ≤ <paramref name="rows"/> ≤ the tensor's rows.</summary>
    public static void Rows(DeviceTensor tensor, int rows)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (rows < 0 || rows > tensor.Rows)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), $"{rows} rows requested from a tensor of {tensor.Rows}.");
        }
    }

    /// <summary>Throws unless <paramref name="elements"/> elements from row <paramref name="rowOffset"/> lie within the tensor.</summary>
    public static void Range(DeviceTensor tensor, int rowOffset, long elements)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (rowOffset < 0 || elements < 0 || ((long)rowOffset * tensor.Cols) + elements > tensor.ElementCount)
        {
            throw new ArgumentOutOfRangeException(nameof(rowOffset), $"{elements} elements at row {rowOffset} exceed a {tensor.Rows}×{tensor.Cols} tensor.");
        }
    }

    /// <summary>
    /// The shape checks of <see cref="ComputeBackend.MatMul"/>: rows within x and the output, a weight whose
    /// [out, in] fits (x at least <c>in</c> wide, the output at least <c>out</c>), and a bias of exactly <c>out</c>
    /// elements.
    /// </summary>
    public static void MatMul(DeviceTensor x, int rows, DeviceTensor weight, DeviceTensor? bias, DeviceTensor output)
    {
        ArgumentNullException.ThrowIfNull(weight);
        Rows(x, rows);
        Rows(output, rows);
        if (x.Cols < weight.Cols || output.Cols < weight.Rows)
        {
            throw new ArgumentException($"MatMul shapes: x has {x.Cols} columns, weight is {weight.Rows}×{weight.Cols}, output has {output.Cols} columns.", nameof(weight));
        }

        if (bias is not null && bias.ElementCount != weight.Rows)
        {
            throw new ArgumentException($"MatMul bias has {bias.ElementCount} elements; the weight's {weight.Rows} output features need as many.", nameof(bias));
        }
    }

    /// <summary>The checks of <see cref="ComputeBackend.SelectTopK"/>.</summary>
    public static void TopK(DeviceTensor scores, int count, int k, DeviceTensor indices)
    {
        Range(scores, 0, count);
        if (k < 0 || k > count)
        {
            throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} must be between 0 and the {count} scores.");
        }

        Range(indices, 0, k);
    }

    /// <summary>The checks of <see cref="ComputeBackend.ImportHalfToCache"/>, all made before anything is written.</summary>
    public static void HalfImport(int sourceLength, int count, DeviceTensor cache, int kvHeads, int capacity, int firstSlot, DeviceTensor? positions, DeviceTensor? inverseFrequencies)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var hd = cache.Cols;
        if (kvHeads <= 0 || hd % 2 != 0)
        {
            throw new ArgumentException($"ImportHalfToCache: {kvHeads} kv heads of {hd} (an even head dim is needed).");
        }

        if (count < 0 || firstSlot < 0 || firstSlot + count > capacity || (long)kvHeads * capacity > cache.Rows || sourceLength < (long)kvHeads * count * hd)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} tokens at slot {firstSlot} do not fit a cache of {kvHeads} heads × {capacity} slots, or the source holds {sourceLength} values.");
        }

        if ((positions is null) != (inverseFrequencies is null))
        {
            throw new ArgumentException("RoPE on import needs both positions and inverse frequencies.");
        }

        if (positions is not null)
        {
            Rows(positions, count);
            if (inverseFrequencies!.ElementCount < hd / 2)
            {
                throw new ArgumentException($"ImportHalfToCache: {inverseFrequencies.ElementCount} inverse frequencies for a head dim of {hd}.");
            }
        }
    }
}
