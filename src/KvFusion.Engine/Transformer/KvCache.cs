using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Transformer;

/// <summary>
/// The working KV cache of one sequence: per layer K (after RoPE) and V as [kv_head][slot][head_dim] float32 on the
/// backend, and the position of every slot. Slots [0, <see cref="Length"/>) are valid; positions must not
/// decrease from slot to slot, which is what makes causal masking by position a prefix of the slots.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly ComputeBackend _backend;
    private readonly DeviceTensor[] _keys;
    private readonly DeviceTensor[] _values;
    private readonly int[] _positions;
    private readonly DeviceTensor _positionsDevice;
    private readonly KvCacheMemory _memory;
    private readonly SessionMemoryPool? _pool;
    private int _uploadedLength = -1;

    internal KvCache(ComputeBackend backend, ModelConfig config, int capacity, SessionMemoryPool? pool = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _backend = backend;
        _pool = pool;
        Capacity = capacity;
        KvHeads = config.KvHeadCount;
        HeadDim = config.HeadDim;
        _memory = pool?.RentCache(capacity) ?? KvCacheMemory.Allocate(backend, config, capacity);
        _keys = _memory.Keys;
        _values = _memory.Values;
        _positions = new int[capacity];
        _positionsDevice = _memory.Positions;
    }

    /// <summary>Number of slots.</summary>
    public int Capacity { get; }

    /// <summary>Key/value heads.</summary>
    public int KvHeads { get; }

    /// <summary>Head dimension.</summary>
    public int HeadDim { get; }

    /// <summary>Valid slots: [0, Length).</summary>
    public int Length { get; private set; }

    /// <summary>Layer count.</summary>
    public int LayerCount => _keys.Length;

    /// <summary>Positions of the valid slots.</summary>
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, Length);

    /// <summary>K (after RoPE) of a layer, [kv_heads·capacity, head_dim].</summary>
    internal DeviceTensor Keys(int layer) => _keys[layer];

    /// <summary>V of a layer, [kv_heads·capacity, head_dim].</summary>
    internal DeviceTensor Values(int layer) => _values[layer];

    /// <summary>Key positions on the device (uploaded lazily).</summary>
    internal DeviceTensor PositionsOnDevice
    {
        get
        {
            if (_uploadedLength != Length)
            {
                _backend.Upload(_positions.AsSpan(0, Length), _positionsDevice, 0);
                _uploadedLength = Length;
            }

            return _positionsDevice;
        }
    }

    /// <summary>
    /// Assigns positions to slots and extends <see cref="Length"/> to cover them. Slots between the old length and a
    /// new slot must be filled by the same call or a later one before attention reads them.
    /// </summary>
    /// <exception cref="ArgumentException">A slot is out of range or positions would decrease along the slots.</exception>
    public void SetPositions(ReadOnlySpan<int> slots, ReadOnlySpan<int> positions)
    {
        if (slots.Length != positions.Length)
        {
            throw new ArgumentException("Slots and positions differ in length.");
        }

        var newLength = Length;
        for (var i = 0; i < slots.Length; i++)
        {
            if ((uint)slots[i] >= (uint)Capacity)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), $"Slot {slots[i]} is outside the cache capacity {Capacity}.");
            }

            if (positions[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(positions), $"Position {positions[i]} is negative.");
            }

            _positions[slots[i]] = positions[i];
            newLength = Math.Max(newLength, slots[i] + 1);
        }

        for (var s = 1; s < newLength; s++)
        {
            if (_positions[s] < _positions[s - 1])
            {
                throw new ArgumentException($"Positions must not decrease along the slots: slot {s - 1} has {_positions[s - 1]}, slot {s} has {_positions[s]}.");
            }
        }

        Length = newLength;
        _uploadedLength = -1;
    }

    /// <summary>Forgets slots from <paramref name="length"/> on (e.g. to reuse a prefix).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length < Length)
        {
            Length = length;
            _uploadedLength = -1;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_pool is null)
        {
            _memory.Dispose();
        }
        else
        {
            _pool.Return(_memory);
        }
    }
}
