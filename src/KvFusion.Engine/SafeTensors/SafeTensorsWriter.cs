using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.SafeTensors;

/// <summary>
/// Produces the bytes of one tensor on demand: fill <paramref name="destination"/> with the tensor's bytes that
/// start at <paramref name="offsetInTensor"/>. Offsets and lengths are whole elements. When the writer's
/// <see cref="SafeTensorsWriter.MaxDegreeOfParallelism"/> is above 1 the source is called from several threads
/// at once (for different ranges), so it must be thread-safe.
/// </summary>
/// <param name="destination">Where the bytes go; its length is a multiple of the element size.</param>
/// <param name="offsetInTensor">Byte offset of <paramref name="destination"/>[0] within the tensor.</param>
internal delegate void TensorDataSource(Span<byte> destination, long offsetInTensor);

/// <summary>
/// Writes a safetensors file: an 8-byte little-endian header length, a JSON header (an optional
/// <c>__metadata__</c> string map, then one entry per tensor with dtype, shape and data_offsets, in the order the
/// tensors were added), padded with spaces to a multiple of 8, then the tensor data. Tensors are declared first and
/// their bytes produced while writing, in blocks, so files far larger than memory (a 16 GB checkpoint) stream
/// through two small buffers.
/// </summary>
internal sealed class SafeTensorsWriter
{
    /// <summary>Default size of one block handed to a <see cref="TensorDataSource"/>.</summary>
    public const int DefaultChunkBytes = 1 << 20;

    // Two of these buffers exist: one is filled while the other is being written, so generation overlaps I/O.
    private const int BatchBytes = 32 << 20;

    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _chunkBytes = DefaultChunkBytes;
    private int _maxDegreeOfParallelism = 1;

    /// <summary>Creates a writer whose metadata is <c>{"format": "pt"}</c>, as PyTorch-saved checkpoints carry.</summary>
    public SafeTensorsWriter()
    {
        Metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
    }

    /// <summary>The <c>__metadata__</c> map; clear it to omit the entry. Written in ordinal key order.</summary>
    public IDictionary<string, string> Metadata { get; }

    /// <summary>
    /// How many blocks are produced at once. Above 1, every <see cref="TensorDataSource"/> must be thread-safe.
    /// Default 1.
    /// </summary>
    public int MaxDegreeOfParallelism
    {
        get => _maxDegreeOfParallelism;
        set => _maxDegreeOfParallelism = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must be at least 1.");
    }

    /// <summary>
    /// Largest block handed to a source in one call (rounded down to a multiple of 8 bytes so that blocks stay
    /// element-aligned for every dtype). Between 64 bytes and 16 MiB; default 1 MiB.
    /// </summary>
    public int ChunkBytes
    {
        get => _chunkBytes;
        set => _chunkBytes = value is >= 64 and <= 16 << 20
            ? value & ~7
            : throw new ArgumentOutOfRangeException(nameof(value), value, "Must be between 64 bytes and 16 MiB.");
    }

    /// <summary>Number of tensors declared so far.</summary>
    public int Count => _entries.Count;

    /// <summary>Bytes of the data section (the sum of all tensor sizes).</summary>
    public long DataLength { get; private set; }

    /// <summary>Declares a tensor whose bytes <paramref name="source"/> produces during writing.</summary>
    /// <param name="name">Unique tensor name (not <c>__metadata__</c>).</param>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions, row-major; each at least 0. An empty shape is a scalar.</param>
    /// <param name="source">Produces the bytes; see <see cref="TensorDataSource"/>.</param>
    public void AddTensor(string name, TensorDType dtype, ReadOnlySpan<int> shape, TensorDataSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        Add(name, dtype, shape, source, expectedBytes: null);
    }

    /// <summary>Declares a tensor from bytes in memory (little-endian elements, exactly the shape's size).</summary>
    /// <param name="name">Unique tensor name (not <c>__metadata__</c>).</param>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions, row-major.</param>
    /// <param name="data">The tensor's bytes; kept by reference until the file is written.</param>
    public void AddTensor(string name, TensorDType dtype, ReadOnlySpan<int> shape, ReadOnlyMemory<byte> data) =>
        Add(name, dtype, shape, (dst, offset) => data.Span.Slice((int)offset, dst.Length).CopyTo(dst), data.Length);

    /// <summary>The complete header: the 8-byte length, the JSON and its space padding.</summary>
    public byte[] BuildHeader()
    {
        var json = new ArrayBufferWriter<byte>(256 + (_entries.Count * 128));
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (Metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    w.WriteString(kv.Key, kv.Value);
                }

                w.WriteEndObject();
            }

            foreach (var e in _entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToSafeTensorsName());
                w.WriteStartArray("shape");
                foreach (var d in e.Shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(e.Offset);
                w.WriteNumberValue(e.Offset + e.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        // The data section then starts 8-byte aligned (8 + a multiple of 8), as the format recommends.
        var padded = (json.WrittenCount + 7) & ~7;
        var header = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)padded);
        json.WrittenSpan.CopyTo(header.AsSpan(8));
        header.AsSpan(8 + json.WrittenCount).Fill((byte)' ');
        return header;
    }

    /// <summary>Size of the file <see cref="WriteFile(string, IProgress{long}?, CancellationToken)"/> writes.</summary>
    public long ComputeFileLength() => BuildHeader().LongLength + DataLength;

    /// <summary>
    /// Writes the file. It goes to a temporary file beside <paramref name="path"/>, renamed over it only when
    /// complete, so an interrupted write never leaves a truncated checkpoint under the real name.
    /// </summary>
    /// <param name="path">Destination; replaced if it exists.</param>
    /// <param name="progress">Receives the number of bytes written so far (header included).</param>
    /// <param name="cancellationToken">Stops the write; the temporary file is removed.</param>
    public void WriteFile(string path, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var temp = $"{full}.{Guid.NewGuid():N}.tmp";
        var header = BuildHeader();
        try
        {
            EnsureFreeSpace(full, header.LongLength + DataLength);

            // No preallocation: on ext4/xfs it makes unwritten extents that every write must convert, which
            // measured slower than plain appends; the free-space check gives the early failure instead.
            using (var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None))
            {
                WriteCore(header, (buffer, offset) => RandomAccess.Write(handle, buffer.Span, offset), progress, cancellationToken);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes the file to a stream, sequentially from its current position.</summary>
    /// <param name="stream">A writable stream; not closed.</param>
    /// <param name="progress">Receives the number of bytes written so far (header included).</param>
    /// <param name="cancellationToken">Stops the write.</param>
    public void WriteTo(Stream stream, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        WriteCore(BuildHeader(), (buffer, _) => stream.Write(buffer.Span), progress, cancellationToken);
    }

    /// <summary>Writes a small safetensors file from tensors held in memory (tests, tools).</summary>
    /// <param name="path">Destination; replaced if it exists.</param>
    /// <param name="tensors">Name, dtype, shape and little-endian bytes of each tensor, in file order.</param>
    /// <param name="metadata">The <c>__metadata__</c> map; null writes <c>{"format": "pt"}</c>.</param>
    public static void WriteFile(string path, IEnumerable<(string Name, TensorDType DType, int[] Shape, byte[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var writer = new SafeTensorsWriter();
        if (metadata is not null)
        {
            writer.Metadata.Clear();
            foreach (var kv in metadata)
            {
                writer.Metadata[kv.Key] = kv.Value;
            }
        }

        foreach (var (name, dtype, shape, data) in tensors)
        {
            writer.AddTensor(name, dtype, shape, data);
        }

        writer.WriteFile(path);
    }

    private void Add(string name, TensorDType dtype, ReadOnlySpan<int> shape, TensorDataSource source, long? expectedBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == "__metadata__")
        {
            throw new ArgumentException("'__metadata__' is reserved for the metadata map.", nameof(name));
        }

        if (dtype is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 or TensorDType.I32))
        {
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown tensor dtype.");
        }

        long elements = 1;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Tensor '{name}' has a negative dimension {d}.", nameof(shape));
            }

            elements = checked(elements * d);
        }

        var bytes = checked(elements * dtype.SizeInBytes());
        if (expectedBytes is { } given && given != bytes)
        {
            throw new ArgumentException(
                $"Tensor '{name}' has {given} bytes but shape [{string.Join(", ", shape.ToArray())}] of {dtype.ToSafeTensorsName()} needs {bytes}.", nameof(shape));
        }

        if (!_names.Add(name))
        {
            throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        }

        _entries.Add(new Entry(name, dtype, shape.ToArray(), DataLength, bytes, source));
        DataLength += bytes;
    }

    private void WriteCore(byte[] header, Action<ReadOnlyMemory<byte>, long> sink, IProgress<long>? progress, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        sink(header, 0);
        var written = (long)header.Length;
        progress?.Report(written);

        // Work items are the tensors cut into ChunkBytes pieces at tensor-relative offsets, so every call to a
        // source is element-aligned whatever dtypes precede it; batches group whole items.
        var chunk = _chunkBytes;
        var batchCapacity = Math.Max(chunk, BatchBytes);
        var items = new List<(Entry Entry, long OffsetInTensor, int Length)>();
        var buffers = new byte[2][];
        var slot = 0;
        Task? pending = null;
        var options = new ParallelOptions { MaxDegreeOfParallelism = _maxDegreeOfParallelism, CancellationToken = ct };
        var entryIndex = 0;
        var offsetInEntry = 0L;
        try
        {
            while (true)
            {
                items.Clear();
                var batchLength = 0;
                while (entryIndex < _entries.Count)
                {
                    var e = _entries[entryIndex];
                    if (offsetInEntry >= e.ByteLength)
                    {
                        entryIndex++;
                        offsetInEntry = 0;
                        continue;
                    }

                    var length = (int)Math.Min(chunk, e.ByteLength - offsetInEntry);
                    if (batchLength + length > batchCapacity)
                    {
                        break;
                    }

                    items.Add((e, offsetInEntry, length));
                    batchLength += length;
                    offsetInEntry += length;
                }

                if (batchLength == 0)
                {
                    break;
                }

                var buffer = buffers[slot] ??= new byte[(int)Math.Min(batchCapacity, DataLength)];
                var starts = new int[items.Count];
                for (int i = 0, at = 0; i < items.Count; i++)
                {
                    starts[i] = at;
                    at += items[i].Length;
                }

                if (_maxDegreeOfParallelism == 1 || items.Count == 1)
                {
                    for (var i = 0; i < items.Count; i++)
                    {
                        ct.ThrowIfCancellationRequested();
                        var (e, off, len) = items[i];
                        e.Source(buffer.AsSpan(starts[i], len), off);
                    }
                }
                else
                {
                    try
                    {
                        Parallel.For(0, items.Count, options, i =>
                        {
                            var (e, off, len) = items[i];
                            e.Source(buffer.AsSpan(starts[i], len), off);
                        });
                    }
                    catch (AggregateException ae)
                    {
                        // Callers see the source's own exception, as in the sequential path; blocks that failed
                        // concurrently almost always failed for the same reason.
                        ExceptionDispatchInfo.Capture(ae.Flatten().InnerExceptions[0]).Throw();
                    }
                }

                if (pending is not null)
                {
                    pending.GetAwaiter().GetResult();
                    pending = null;
                    progress?.Report(written);
                }

                var fileOffset = written;
                var memory = new ReadOnlyMemory<byte>(buffer, 0, batchLength);
                pending = Task.Run(() => sink(memory, fileOffset), CancellationToken.None);
                written += batchLength;
                slot ^= 1;
            }

            if (pending is not null)
            {
                pending.GetAwaiter().GetResult();
                pending = null;
                progress?.Report(written);
            }
        }
        finally
        {
            if (pending is not null)
            {
                // A failure while producing the next batch: let the write in flight finish before the caller
                // closes the file under it. Its own error, if any, is secondary to the one being thrown.
                try
                {
                    pending.Wait(CancellationToken.None);
                }
                catch (AggregateException)
                {
                }
            }
        }
    }

    /// <summary>Fails before writing anything when the volume plainly lacks the room (a full disk 15 GB in is worse).</summary>
    private static void EnsureFreeSpace(string path, long needed)
    {
        long available;
        try
        {
            available = new DriveInfo(Path.GetDirectoryName(path)!).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            // Not every file system reports it; the write itself will still fail cleanly if space runs out.
            return;
        }

        if (available < needed)
        {
            throw new IOException($"Not enough disk space for {path}: {needed:N0} bytes needed, {available:N0} available.");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed record Entry(string Name, TensorDType DType, int[] Shape, long Offset, long ByteLength, TensorDataSource Source);
}
