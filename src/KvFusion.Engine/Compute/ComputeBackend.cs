using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Engine.Compute;

/// <summary>
/// A device the engine computes on: create a <c>CpuBackend</c> or a <c>CudaBackend</c>, load models on it with
/// <c>TransformerModel.Load</c>, dispose it after them. Its operations are the engine's own (internal): the
/// operations the transformer needs, on tensors that live where the backend computes. All activations are
/// float32 row-major matrices unless a method says otherwise; weights keep their stored dtype (F16, BF16, F32).
/// Index arguments (token ids, positions, slots, rows) are <see cref="TensorDType.I32"/> tensors of one column.
/// Implementations: the CPU backend (the reference) and the CUDA backend.
/// <para>
/// Concurrency contract: a backend is safe for concurrent use by any number of sessions. Every operation is atomic
/// with respect to every other operation on the same backend: the backend serializes its operations internally
/// (each holds the backend's operation lock for its whole duration, including any small-work path, scratch growth,
/// staging upload and download), so sessions on different threads interleave at operation granularity and each gets
/// exactly the result it would get alone. Ordering between the operations of one session is the caller's, as is
/// not using a tensor from two threads at once; a tensor is used only with the backend that created it.
/// </para>
/// </summary>
public abstract class ComputeBackend : IDisposable
{
    // The operation lock of the concurrency contract: every operation and Dispose hold it.
    private readonly Lock _operations = new();
    private bool _disposed;

    /// <summary>Only the engine's own backends derive from this type (the CPU here, the GPU in KvFusion.Cuda).</summary>
    private protected ComputeBackend()
    {
    }

    /// <summary>A human-readable description of the device (e.g. "CPU: 2 threads, AVX2").</summary>
    public abstract string DeviceName { get; }

    /// <summary>Allocates a zero-filled tensor.</summary>
    internal abstract DeviceTensor Allocate(TensorDType dtype, int rows, int cols);

    /// <summary>
    /// Makes a weight tensor of <paramref name="rows"/> × <paramref name="cols"/> from a checkpoint tensor (a view
    /// of the memory-mapped file on the CPU; a device copy on a GPU).
    /// </summary>
    internal abstract DeviceTensor CreateWeight(SafeTensor source, int rows, int cols);

    /// <summary>Copies host floats into rows starting at <paramref name="rowOffset"/> of an F32 tensor.</summary>
    internal abstract void Upload(ReadOnlySpan<float> source, DeviceTensor destination, int rowOffset);

    /// <summary>Copies host ints into rows starting at <paramref name="rowOffset"/> of an I32 tensor.</summary>
    internal abstract void Upload(ReadOnlySpan<int> source, DeviceTensor destination, int rowOffset);

    /// <summary>Copies <paramref name="rowCount"/> rows of an F32 tensor to host memory.</summary>
    internal abstract void Download(DeviceTensor source, int rowOffset, int rowCount, Span<float> destination);

    /// <summary>Copies rows between two tensors of the same dtype and width.</summary>
    internal abstract void CopyRows(DeviceTensor source, int sourceRow, DeviceTensor destination, int destinationRow, int rowCount);

    /// <summary>output[i] = table[ids[i]] as float32 for i &lt; count.</summary>
    internal abstract void Embed(DeviceTensor table, DeviceTensor ids, int count, DeviceTensor output);

    /// <summary>output[i] = x[i] / rms(x[i]) * weight, for the first <paramref name="rows"/> rows.</summary>
    internal abstract void RmsNorm(DeviceTensor x, int rows, DeviceTensor weight, float epsilon, DeviceTensor output);

    /// <summary>In place: each head (a run of <paramref name="headDim"/> columns) of each row is RMS-normalized with <paramref name="weight"/> (Qwen3 q/k norm).</summary>
    internal abstract void RmsNormHeads(DeviceTensor x, int rows, int headDim, DeviceTensor weight, float epsilon);

    /// <summary>
    /// output[0..rows) = x[0..rows) · weightᵀ (+ bias), where weight is [out, in] as stored by Hugging Face; with
    /// <paramref name="accumulate"/> the product is added to output.
    /// </summary>
    internal abstract void MatMul(DeviceTensor x, int rows, DeviceTensor weight, DeviceTensor? bias, DeviceTensor output, bool accumulate);

    /// <summary>
    /// Rotates each head of rows [0, rows) of <paramref name="x"/> to the position in <paramref name="positions"/>
    /// (rotate-half convention), writing to <paramref name="output"/> (which may be <paramref name="x"/>). A negative
    /// position rotates backwards, so applying −p undoes +p.
    /// </summary>
    internal abstract void ApplyRope(DeviceTensor x, int rows, int headDim, DeviceTensor positions, DeviceTensor inverseFrequencies, DeviceTensor output);

    /// <summary>output = silu(gate) * up for the first rows.</summary>
    internal abstract void SiluMultiply(DeviceTensor gate, DeviceTensor up, int rows, DeviceTensor output);

    /// <summary>target += source for the first rows.</summary>
    internal abstract void Add(DeviceTensor target, DeviceTensor source, int rows);

    /// <summary>
    /// Writes rows of K or V ([rows, kvHeads·headDim]) into a layer's cache ([kvHeads·capacity, headDim], layout
    /// [kv_head][slot][head_dim]) at the slots given.
    /// </summary>
    internal abstract void ScatterToCache(DeviceTensor source, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity);

    /// <summary>
    /// Writes stored half-precision K or V of <paramref name="count"/> consecutive tokens into slots
    /// [<paramref name="firstSlot"/>, firstSlot + count) of a layer's cache. <paramref name="source"/> has the cache's own
    /// layout, [kv_head][token][head_dim], so a stored chunk moves without reshaping. With
    /// <paramref name="positions"/> (I32, one per token) and <paramref name="inverseFrequencies"/>, each head is rotated
    /// by RoPE to its position on the way in (stored K is kept before RoPE); without them the values are copied.
    /// </summary>
    internal abstract void ImportHalfToCache(ReadOnlySpan<Half> source, int count, DeviceTensor cache, int kvHeads, int capacity, int firstSlot, DeviceTensor? positions, DeviceTensor? inverseFrequencies);

    /// <summary>Reads cache rows at the slots given into [rows, kvHeads·headDim] (the inverse of <see cref="ScatterToCache"/>).</summary>
    internal abstract void GatherFromCache(DeviceTensor cache, int kvHeads, int capacity, DeviceTensor slots, int rows, DeviceTensor destination);

    /// <summary>
    /// Causal attention of the query rows over the first KeyCount cache slots: a
    /// query at position p attends to the slots whose key position is ≤ p. Key positions must be non-decreasing by slot.
    /// </summary>
    internal abstract void Attention(in AttentionArguments arguments);

    /// <summary>destination[i] = source[indices[i]] for i &lt; count (whole rows).</summary>
    internal abstract void GatherRows(DeviceTensor source, DeviceTensor indices, int count, DeviceTensor destination);

    /// <summary>
    /// Per row i &lt; rows: the squared L2 distance between <paramref name="fresh"/> row i ([kvHeads·headDim]) and the
    /// cache entry at slot slots[i], summed over heads; written to <paramref name="output"/> (F32, one column).
    /// </summary>
    internal abstract void CacheDeviation(DeviceTensor fresh, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity, DeviceTensor output);

    /// <summary>
    /// Writes to <paramref name="indices"/> (I32, one column), ascending, the rows of the <paramref name="k"/> largest
    /// of the first <paramref name="count"/> <paramref name="scores"/> (F32, one column). Ties go to the lower row; NaN
    /// ranks below every number. Blend uses it to pick the tokens to recompute.
    /// </summary>
    internal abstract void SelectTopK(DeviceTensor scores, int count, int k, DeviceTensor indices);

    /// <summary>Waits until all queued work is done (a no-op on the CPU).</summary>
    internal abstract void Synchronize();

    /// <summary>
    /// Releases the backend's threads, device context and memory, under the operation lock so that no operation of
    /// another session runs on what it frees; operations afterwards throw <see cref="ObjectDisposedException"/>. The
    /// models loaded on it must not be used after.
    /// </summary>
    public void Dispose()
    {
        using (_operations.EnterScope())
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Dispose(true);
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Whether <see cref="Dispose()"/> has run (read it under the operation lock).</summary>
    private protected bool IsDisposed => _disposed;

    /// <summary>The operation lock, for work that must not interleave with operations but is not one (freeing memory).</summary>
    private protected Lock OperationLock => _operations;

    /// <summary>Releases what the backend holds; called once, under the operation lock.</summary>
    protected abstract void Dispose(bool disposing);

    /// <summary>Enters the operation lock for one operation; throws once the backend is disposed.</summary>
    private protected Lock.Scope Enter()
    {
        var scope = _operations.EnterScope();
        if (_disposed)
        {
            scope.Dispose();
            throw new ObjectDisposedException(GetType().Name);
        }

        return scope;
    }
}

/// <summary>Arguments of <see cref="ComputeBackend.Attention"/>.</summary>
internal readonly record struct AttentionArguments(
    DeviceTensor Query,
    int Rows,
    DeviceTensor QueryPositions,
    DeviceTensor KeyCache,
    DeviceTensor ValueCache,
    DeviceTensor KeyPositions,
    int KeyCount,
    int Capacity,
    int HeadCount,
    int KvHeadCount,
    int HeadDim,
    float Scale,
    DeviceTensor Output,
    DeviceTensor? AttentionToKeys = null)
{
    /// <summary>
    /// Checks the shapes every backend relies on (dtypes are the backend's to check): rows within the query, output
    /// and position tensors, heads that group evenly, head widths that fit, and a key count within a cache that holds
    /// every KV head's capacity.
    /// </summary>
    /// <exception cref="ArgumentException">The arguments are inconsistent.</exception>
    public void Validate()
    {
        if (Rows < 0 || Rows > Query.Rows || Rows > Output.Rows || Rows > QueryPositions.ElementCount)
        {
            throw new ArgumentOutOfRangeException(nameof(Rows), $"Attention over {Rows} rows: the query has {Query.Rows}, the output {Output.Rows}, the positions {QueryPositions.ElementCount}.");
        }

        if (KvHeadCount <= 0 || HeadCount % KvHeadCount != 0 || HeadDim <= 0
            || Query.Cols < HeadCount * HeadDim || Output.Cols < HeadCount * HeadDim
            || KeyCache.Cols != HeadDim || ValueCache.Cols != HeadDim
            || KeyCount < 0 || KeyCount > Capacity || KeyPositions.ElementCount < KeyCount
            || KeyCache.Rows < (long)KvHeadCount * Capacity || ValueCache.Rows < (long)KvHeadCount * Capacity)
        {
            throw new ArgumentException("Attention: head layout, key count or cache capacity are inconsistent.");
        }

        if (AttentionToKeys is not null && AttentionToKeys.ElementCount < KeyCount)
        {
            throw new ArgumentException($"Attention: {AttentionToKeys.ElementCount} key weights for {KeyCount} keys.");
        }
    }
}
