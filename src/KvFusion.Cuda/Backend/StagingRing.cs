using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Backend;

/// <summary>
/// Two pinned host buffers that stage host-to-device copies: the caller's bytes are copied into a free buffer and
/// the transfer is queued asynchronously; an event per buffer says when it may be refilled, so uploads overlap with
/// queued work and the caller's memory is never read after the call returns.
/// </summary>
internal sealed unsafe class StagingRing : IDisposable
{
    private const long ParallelCopySlice = 256 * 1024;
    private static readonly int MaxCopyThreads = Math.Clamp(Environment.ProcessorCount / 2, 1, 8);

    private readonly PinnedHostBuffer[] _buffers;
    private readonly CudaEventHandle[] _done;
    private readonly bool[] _pending;
    private int _next;

    public StagingRing(long bufferBytes)
    {
        _buffers = new PinnedHostBuffer[2];
        _done = new CudaEventHandle[2];
        _pending = new bool[2];
        for (var i = 0; i < 2; i++)
        {
            _buffers[i] = PinnedHostBuffer.Allocate(bufferBytes);
            _done[i] = CudaEventHandle.Create(CudaDriver.EventDisableTiming);
        }
    }

    /// <summary>Queues a copy of <paramref name="bytes"/> from <paramref name="source"/> to device address <paramref name="destination"/>.</summary>
    public void Upload(byte* source, long bytes, ulong destination, nint stream)
    {
        var offset = 0L;
        while (offset < bytes)
        {
            var i = _next;
            _next = (_next + 1) % _buffers.Length;
            var buffer = _buffers[i];
            var ev = _done[i].DangerousGetHandle();
            if (_pending[i])
            {
                CudaDriver.Check(CudaDriver.cuEventSynchronize(ev), nameof(CudaDriver.cuEventSynchronize));
            }

            var chunk = Math.Min(buffer.Bytes, bytes - offset);
            Copy(source + offset, buffer.Pointer, chunk);
            CudaDriver.Check(
                CudaDriver.cuMemcpyHtoDAsync(destination + (ulong)offset, buffer.Pointer, (nuint)chunk, stream),
                nameof(CudaDriver.cuMemcpyHtoDAsync));
            CudaDriver.Check(CudaDriver.cuEventRecord(ev, stream), nameof(CudaDriver.cuEventRecord));
            _pending[i] = true;
            offset += chunk;
        }
    }

    /// <summary>
    /// Host copy into a staging buffer. Large copies (stored chunk KV: megabytes per layer) are split over several
    /// cores, since one core's copy bandwidth, not the PCIe link, would otherwise bound loading.
    /// </summary>
    private static void Copy(byte* source, byte* destination, long bytes)
    {
        var parts = (int)Math.Min(MaxCopyThreads, bytes / ParallelCopySlice);
        if (parts <= 1)
        {
            Buffer.MemoryCopy(source, destination, bytes, bytes);
            return;
        }

        var slice = ((bytes / parts) + 63) & ~63L;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, i =>
        {
            var start = i * slice;
            var length = Math.Min(slice, bytes - start);
            if (length > 0)
            {
                Buffer.MemoryCopy(source + start, destination + start, length, length);
            }
        });
    }

    public void Dispose()
    {
        for (var i = 0; i < _buffers.Length; i++)
        {
            _done[i]?.Dispose();
            _buffers[i]?.Dispose();
        }
    }
}
