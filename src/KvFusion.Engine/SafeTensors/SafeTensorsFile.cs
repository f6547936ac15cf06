using System.IO.MemoryMappedFiles;
using System.Text.Json;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.SafeTensors;

/// <summary>
/// A memory-mapped safetensors file. The header is validated completely (lengths, dtypes, shapes, offsets in
/// bounds and consistent, no overlaps) before any tensor is handed out, so a corrupt file fails with a
/// <see cref="ModelLoadException"/> that names the problem instead of reading out of bounds.
/// </summary>
internal sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted; real checkpoints stay far below it.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, SafeTensor> _tensors;
    private bool _disposed;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr, Dictionary<string, SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Names of all tensors in the file.</summary>
    public IEnumerable<string> TensorNames => _tensors.Keys;

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <exception cref="ModelLoadException">The file is missing, truncated or its header is inconsistent.</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"Weights file not found: {path}") { FilePath = path };
        }

        long length;
        MemoryMappedFile map;
        try
        {
            length = new FileInfo(path).Length;
            if (length < 8)
            {
                throw ModelLoadException.InFile(path, $"is not a safetensors file: {length} bytes is shorter than the 8-byte header length.");
            }

            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ModelLoadException.InFile(path, $"cannot be read: {e.Message}", e);
        }

        MemoryMappedViewAccessor? view = null;
        try
        {
            try
            {
                view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw ModelLoadException.InFile(path, $"cannot be mapped into memory: {e.Message}", e);
            }

            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            var (tensors, metadata) = ParseHeader(path, ptr, length);
            return new SafeTensorsFile(path, map, view, ptr, tensors, metadata);
        }
        catch
        {
            if (view is not null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }

            map.Dispose();
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Gets a tensor by name.</summary>
    /// <exception cref="ModelLoadException">No tensor of that name.</exception>
    public SafeTensor Get(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(name, out var t)
            ? t
            : throw new ModelLoadException($"Tensor '{name}' is missing from {Path}.") { FilePath = Path, TensorName = name };
    }

    /// <summary>Tries to get a tensor by name.</summary>
    public bool TryGet(string name, out SafeTensor tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(name, out tensor);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private static (Dictionary<string, SafeTensor>, IReadOnlyDictionary<string, string>) ParseHeader(string path, byte* ptr, long fileLength)
    {
        var headerLength = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(ptr, 8));
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
        {
            throw ModelLoadException.InFile(
                path, $"header length {headerLength} is out of bounds for a file of {fileLength} bytes (truncated or not a safetensors file).");
        }

        var dataStart = 8 + headerLength;
        var dataLength = fileLength - dataStart;
        // ModelJson.Parse also rejects text that is not valid UTF-8 or Unicode, so the walk below can read every
        // name and string without an InvalidOperationException.
        using (var doc = ModelJson.Parse(new ReadOnlySpan<byte>(ptr + 8, (int)headerLength).ToArray(), path, "the safetensors header is not valid JSON"))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw ModelLoadException.InFile(path, "the safetensors header is not a JSON object.");
            }

            var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var m in prop.Value.EnumerateObject())
                        {
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                        }
                    }

                    continue;
                }

                // JSON allows a repeated key; two entries for one tensor name make the file ambiguous.
                if (tensors.ContainsKey(prop.Name))
                {
                    throw ModelLoadException.InTensor(path, prop.Name, "appears twice in the safetensors header.");
                }

                var t = ParseEntry(path, prop, ptr + dataStart, dataLength);
                tensors.Add(prop.Name, t);
                ranges.Add((t.Data - (ptr + dataStart), t.Data - (ptr + dataStart) + t.ByteLength, prop.Name));
            }

            ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (var i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                {
                    throw new ModelLoadException($"{path}: tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap in the data section.")
                    {
                        FilePath = path,
                        TensorName = ranges[i].Name,
                    };
                }
            }

            return (tensors, metadata);
        }
    }

    private static SafeTensor ParseEntry(string path, JsonProperty prop, byte* data, long dataLength)
    {
        var name = prop.Name;
        var e = prop.Value;
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
        {
            throw ModelLoadException.InTensor(path, name, "needs 'dtype', 'shape' and two 'data_offsets' in the header.");
        }

        var dtypeName = dtypeEl.GetString()!;
        if (!TensorDTypeExtensions.TryParseSafeTensors(dtypeName, out var dtype))
        {
            throw ModelLoadException.InTensor(path, name, $"has dtype {dtypeName}; supported are F16, BF16, F32 and I32.");
        }

        var shape = new int[shapeEl.GetArrayLength()];
        var i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0 || dim > int.MaxValue)
            {
                throw ModelLoadException.InTensor(path, name, $"has an invalid dimension {d.GetRawText()}.");
            }

            shape[i++] = (int)dim;
        }

        var elements = ElementCount(shape);
        if (elements < 0)
        {
            throw ModelLoadException.InTensor(path, name, $"has shape [{string.Join(", ", shape)}], whose element count does not fit in 64 bits.");
        }

        long begin, end;
        try
        {
            begin = offEl[0].GetInt64();
            end = offEl[1].GetInt64();
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException)
        {
            throw new ModelLoadException($"{path}: tensor '{name}' has non-integer data_offsets.", ex) { FilePath = path, TensorName = name };
        }

        if (begin < 0 || end < begin || end > dataLength)
        {
            throw ModelLoadException.InTensor(
                path, name, $"data_offsets [{begin}, {end}] fall outside the {dataLength}-byte data section (truncated file?).");
        }

        // The range is within the file, so a byte count that disagrees cannot come from an overflowing product.
        var expectedBytes = (Int128)elements * dtype.SizeInBytes();
        if (end - begin != expectedBytes)
        {
            throw ModelLoadException.InTensor(
                path, name, $"has {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expectedBytes}.");
        }

        return new SafeTensor(name, dtype, shape, data + begin, end - begin, path);
    }

    /// <summary>The product of the dimensions, or -1 when it exceeds <see cref="long.MaxValue"/>.</summary>
    private static long ElementCount(int[] shape)
    {
        if (Array.IndexOf(shape, 0) >= 0)
        {
            return 0;
        }

        Int128 product = 1;
        foreach (var d in shape)
        {
            // Each factor is below 2^31, so the product stays exact in 128 bits until it is found too large.
            product *= d;
            if (product > long.MaxValue)
            {
                return -1;
            }
        }

        return (long)product;
    }
}
