using KvFusion.Cuda.Interop;
using KvFusion.Cuda.Kernels;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    /// <summary>Up to this many query rows use the split-K decode kernels; more use the tiled prefill kernel.</summary>
    private const int DecodeMaxRows = 4;
    private const int DecodeMaxGroup = 8;
    private const int DecodeWarps = 8;
    private const int PrefillRowsPerBlock = 32;
    private const int PrefillKeysPerTile = 32;
    private const int MinKeysPerSplit = 64;

    /// <inheritdoc />
    internal override void Attention(in AttentionArguments arguments)
    {
        using var op = Enter();

        var args = arguments;
        var q = Check(args.Query, TensorDType.F32);
        var qpos = Check(args.QueryPositions, TensorDType.I32);
        var kc = Check(args.KeyCache, TensorDType.F32);
        var vc = Check(args.ValueCache, TensorDType.F32);
        var kpos = Check(args.KeyPositions, TensorDType.I32);
        var o = Check(args.Output, TensorDType.F32);
        args.Validate();

        var names = KernelNames.Attention(args.HeadDim);
        var keyWeights = args.AttentionToKeys is null ? null : Check(args.AttentionToKeys, TensorDType.F32);
        if (args.Rows == 0)
        {
            if (keyWeights is not null)
            {
                ClearKeyWeights(keyWeights, args.Capacity);
            }

            return;
        }

        MakeCurrent();
        var group = args.HeadCount / args.KvHeadCount;
        var scaleLog2 = args.Scale * Log2E;
        ulong lse = 0;
        if (keyWeights is not null)
        {
            lse = Scratch(ref _attentionLse, (long)args.Rows * args.HeadCount * sizeof(float));
        }

        ulong pq = q.Pointer, pqp = qpos.Pointer, pk = kc.Pointer, pv = vc.Pointer, pkp = kpos.Pointer, po = o.Pointer;
        long ldq = q.Cols, ldo = o.Cols;
        int rows = args.Rows, keyCount = args.KeyCount, capacity = args.Capacity, heads = args.HeadCount, hd = args.HeadDim;
        if (args.Rows <= DecodeMaxRows && group <= DecodeMaxGroup)
        {
            // Enough splits to give every multiprocessor a few blocks, each split at least MinKeysPerSplit keys.
            var wantSplits = Math.Max(1, (2 * Device.Multiprocessors + (args.KvHeadCount * rows) - 1) / (args.KvHeadCount * rows));
            var splitSize = Math.Max(MinKeysPerSplit, (keyCount + wantSplits - 1) / wantSplits);
            var splits = Math.Max(1, (keyCount + splitSize - 1) / splitSize);
            var partials = (long)rows * heads * splits;
            var partialBase = Scratch(ref _attentionPartials, partials * (hd + 2) * sizeof(float));
            ulong partO = partialBase, partMl = partialBase + (ulong)(partials * hd * sizeof(float));
            var shared = (uint)(((group * hd) + (DecodeWarps * group * hd) + (2 * DecodeWarps * group)) * sizeof(float));
            void** decodeArgs = stackalloc void*[] { &pq, &ldq, &pqp, &pk, &pv, &pkp, &keyCount, &capacity, &heads, &group, &scaleLog2, &splitSize, &partO, &partMl };
            Launch(names.Decode, (uint)args.KvHeadCount, (uint)splits, (uint)rows, DecodeWarps * 32, shared, decodeArgs);
            void** combineArgs = stackalloc void*[] { &partO, &partMl, &heads, &splits, &po, &ldo, &lse };
            Launch(names.Combine, (uint)(rows * heads), 1, 1, (uint)Math.Min(128, Math.Max(32, hd)), 0, combineArgs);
        }
        else
        {
            var shared = (uint)(((PrefillRowsPerBlock * hd) + (PrefillKeysPerTile * (hd + 1)) + (PrefillKeysPerTile * hd)) * sizeof(float));
            void** prefillArgs = stackalloc void*[] { &pq, &ldq, &pqp, &rows, &pk, &pv, &pkp, &keyCount, &capacity, &heads, &group, &scaleLog2, &po, &ldo, &lse };
            Launch(names.Prefill, (uint)((rows + PrefillRowsPerBlock - 1) / PrefillRowsPerBlock), (uint)heads, 1, 128, shared, prefillArgs);
        }

        if (keyWeights is not null)
        {
            ClearKeyWeights(keyWeights, capacity);
            if (keyCount > 0)
            {
                ulong pw = keyWeights.Pointer;
                void** weightArgs = stackalloc void*[] { &pq, &ldq, &pqp, &rows, &pk, &pkp, &keyCount, &capacity, &heads, &group, &scaleLog2, &lse, &pw };
                Launch(names.KeyWeights, (uint)((keyCount + 127) / 128), (uint)heads, 1, 128, 0, weightArgs);
            }
        }
    }

    private void ClearKeyWeights(CudaTensor keyWeights, int capacity)
    {
        var n = Math.Min(keyWeights.ElementCount, capacity);
        if (n > 0)
        {
            MakeCurrent();
            Check(CudaDriver.cuMemsetD32Async(keyWeights.Pointer, 0, (nuint)n, _streamRaw), nameof(CudaDriver.cuMemsetD32Async));
        }
    }

    /// <summary>
    /// A device scratch buffer of at least <paramref name="bytes"/>, grown (never shrunk) on demand. Growing waits for
    /// queued work first, since kernels queued earlier may still read the old buffer.
    /// </summary>
    private ulong Scratch(ref CudaDeviceMemory? buffer, long bytes)
    {
        if (buffer is null || buffer.Bytes < bytes)
        {
            if (buffer is not null)
            {
                Check(CudaDriver.cuStreamSynchronize(_streamRaw), nameof(CudaDriver.cuStreamSynchronize));
                buffer.Dispose();
            }

            buffer = CudaDeviceMemory.Allocate(Math.Max(bytes, 1 << 16));
        }

        return buffer.Pointer;
    }
}
