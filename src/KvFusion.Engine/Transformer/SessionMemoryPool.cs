using System.Collections.Concurrent;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// KV caches and pass scratch of ended sessions, kept for the next ones. A fused request opens a session whose cache
/// and row buffers run to tens of megabytes; fresh memory costs a page fault per page on first touch, which measured
/// 30-60 ms per request on the tiny model at 1k tokens, more than the layers a partial recompute saves. Sizes are
/// rounded up (<see cref="Granularity"/>) so requests of similar length share them; a few of each size and a bounded
/// total are kept, the rest freed.
/// </summary>
internal sealed class SessionMemoryPool(ComputeBackend backend, ModelConfig config) : IDisposable
{
    /// <summary>Slots and rows are rounded up to a multiple of this.</summary>
    public const int Granularity = 256;

    /// <summary>Kept per size.</summary>
    public const int KeptPerSize = 4;

    /// <summary>Most bytes kept in all.</summary>
    public const long MaxKeptBytes = 512L << 20;

    private readonly ConcurrentDictionary<int, ConcurrentBag<KvCacheMemory>> _caches = new();
    private readonly ConcurrentDictionary<int, ConcurrentBag<PassBuffers>> _passes = new();
    private long _keptBytes;
    private long _liveBytes;
    private int _liveCaches;
    private volatile bool _disposed;

    /// <summary>KV caches rented by open sessions and not yet returned.</summary>
    public int LiveCaches => Volatile.Read(ref _liveCaches);

    /// <summary>Bytes of the KV caches rented by open sessions.</summary>
    public long LiveCacheBytes => Interlocked.Read(ref _liveBytes);

    /// <summary>The cache capacity a session asking for <paramref name="slots"/> gets.</summary>
    public int CacheCapacity(int slots) => Math.Min(config.MaxPositionEmbeddings, RoundUp(slots));

    /// <summary>Rows a pass buffer for <paramref name="rows"/> rows holds (at most <paramref name="limit"/>, but at least <paramref name="rows"/>).</summary>
    public static int PassRows(int rows, int limit) => Math.Max(rows, Math.Min(limit, RoundUp(rows)));

    /// <summary>A cache of exactly <paramref name="capacity"/> slots: a kept one, or new.</summary>
    public KvCacheMemory RentCache(int capacity)
    {
        if (!_caches.TryGetValue(capacity, out var bag) || !bag.TryTake(out var memory))
        {
            memory = KvCacheMemory.Allocate(backend, config, capacity);
        }
        else
        {
            Interlocked.Add(ref _keptBytes, -memory.Bytes);
        }

        Interlocked.Increment(ref _liveCaches);
        Interlocked.Add(ref _liveBytes, memory.Bytes);
        return memory;
    }

    /// <summary>Keeps <paramref name="memory"/> for a later session, or frees it.</summary>
    public void Return(KvCacheMemory memory)
    {
        Interlocked.Decrement(ref _liveCaches);
        Interlocked.Add(ref _liveBytes, -memory.Bytes);
        if (!Keep(_caches.GetOrAdd(memory.Capacity, _ => []), memory, memory.Bytes))
        {
            memory.Dispose();
        }
    }

    /// <summary>Pass buffers of exactly <paramref name="rows"/> rows: kept ones, or new.</summary>
    public PassBuffers RentPass(int rows)
    {
        if (_passes.TryGetValue(rows, out var bag) && bag.TryTake(out var buffers))
        {
            Interlocked.Add(ref _keptBytes, -buffers.Bytes);
            return buffers;
        }

        return new PassBuffers(backend, config, rows);
    }

    /// <summary>Keeps <paramref name="buffers"/> for a later pass, or frees them.</summary>
    public void Return(PassBuffers buffers)
    {
        if (!Keep(_passes.GetOrAdd(buffers.Rows, _ => []), buffers, buffers.Bytes))
        {
            buffers.Dispose();
        }
    }

    /// <summary>Frees everything kept; later returns are freed at once.</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var bag in _caches.Values)
        {
            while (bag.TryTake(out var m))
            {
                m.Dispose();
            }
        }

        foreach (var bag in _passes.Values)
        {
            while (bag.TryTake(out var p))
            {
                p.Dispose();
            }
        }
    }

    private static int RoundUp(int n) => checked((Math.Max(n, 1) + Granularity - 1) / Granularity * Granularity);

    private bool Keep<T>(ConcurrentBag<T> bag, T item, long bytes)
    {
        if (_disposed || bag.Count >= KeptPerSize)
        {
            return false;
        }

        if (Interlocked.Add(ref _keptBytes, bytes) > MaxKeptBytes)
        {
            Interlocked.Add(ref _keptBytes, -bytes);
            return false;
        }

        bag.Add(item);
        return true;
    }
}

/// <summary>The device tensors of one KV cache: keys and values per layer, and the slot positions.</summary>
internal sealed class KvCacheMemory : IDisposable
{
    private KvCacheMemory(DeviceTensor[] keys, DeviceTensor[] values, DeviceTensor positions, int capacity, long bytes)
    {
        Keys = keys;
        Values = values;
        Positions = positions;
        Capacity = capacity;
        Bytes = bytes;
    }

    public DeviceTensor[] Keys { get; }

    public DeviceTensor[] Values { get; }

    public DeviceTensor Positions { get; }

    public int Capacity { get; }

    public long Bytes { get; }

    public static KvCacheMemory Allocate(ComputeBackend backend, ModelConfig config, int capacity)
    {
        var keys = new DeviceTensor[config.LayerCount];
        var values = new DeviceTensor[config.LayerCount];
        for (var l = 0; l < config.LayerCount; l++)
        {
            keys[l] = backend.Allocate(TensorDType.F32, config.KvHeadCount * capacity, config.HeadDim);
            values[l] = backend.Allocate(TensorDType.F32, config.KvHeadCount * capacity, config.HeadDim);
        }

        return new KvCacheMemory(keys, values, backend.Allocate(TensorDType.I32, capacity, 1), capacity, BytesFor(config, capacity));
    }

    /// <summary>Bytes a cache of <paramref name="capacity"/> slots holds: K and V of every layer, float32, and the positions.</summary>
    public static long BytesFor(ModelConfig config, int capacity) =>
        (2L * config.LayerCount * config.KvHeadCount * capacity * config.HeadDim * sizeof(float)) + (4L * capacity);

    public void Dispose()
    {
        foreach (var t in Keys)
        {
            t.Dispose();
        }

        foreach (var t in Values)
        {
            t.Dispose();
        }

        Positions.Dispose();
    }
}
