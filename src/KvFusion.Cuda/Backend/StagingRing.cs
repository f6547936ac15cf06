using KvFusion.Cuda.Interop;

namespace KvFusion.Cuda.Backend;

/// <summary>
/// Two pinned host buffers that stage host-to-device copies. Uploads are appended to the current buffer (64-byte
/// aligned) and their transfers queued asynchronously; only when a buffer is full does the ring move to the other
/// one, waiting first for that buffer's last transfer (an event). So many small uploads (token ids, positions, slots)
/// never stall the host on queued work, large ones stream through both buffers, and the caller's memory is never read
/// after the call returns.
/// </summary>
internal sealed unsafe class StagingRing : IDisposable
{
    private const long ParallelCopySlice = 256 * 1024;
    private static readonly int MaxCopyThreads = Math.Clamp(Environment.ProcessorCount / 2, 1, 8);

    private readonly PinnedHostBuffer[] _buffers;
    private readonly CudaEventHandle[] _done;
    private readonly bool[] _pending;
    private readonly long[] _used;
    private int _current;

    public StagingRing(long bufferBytes)
    {
        _buffers = new PinnedHostBuffer[2];
        _done = new CudaEventHandle[2];
        _pending = new bool[2];
        _used = new long[2];
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
            if (_used[_current] >= _buffers[_current].Bytes)
            {
                Rotate();
            }

            var i = _current;
            var buffer = _buffers[i];
            var chunk = Math.Min(buffer.Bytes - _used[i], bytes - offset);
            var staged = buffer.Pointer + _used[i];
            Copy(source + offset, staged, chunk);
            CudaDriver.Check(
                CudaDriver.cuMemcpyHtoDAsync(destination + (ulong)offset, staged, (nuint)chunk, stream),
                nameof(CudaDriver.cuMemcpyHtoDAsync));
            CudaDriver.Check(CudaDriver.cuEventRecord(_done[i].DangerousGetHandle(), stream), nameof(CudaDriver.cuEventRecord));
            _pending[i] = true;
            _used[i] = Math.Min(buffer.Bytes, (_used[i] + chunk + 63) & ~63L);
            offset += chunk;
        }
    }

    /// <summary>Moves to the other buffer once its queued transfers are done.</summary>
    private void Rotate()
    {
        _current = (_current + 1) % _buffers.Length;
        if (_pending[_current])
        {
            CudaDriver.Check(CudaDriver.cuEventSynchronize(_done[_current].DangerousGetHandle()), nameof(CudaDriver.cuEventSynchronize));
            _pending[_current] = false;
        }

        _used[_current] = 0;
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
