using System.Buffers.Binary;
using KvFusion.Engine.Models;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Engine.Tests.SafeTensors;

public sealed class SafeTensorsWriterTests
{
    private static byte[] Bytes(int count, int salt)
    {
        var b = new byte[count];
        for (var i = 0; i < b.Length; i++)
        {
            b[i] = (byte)((i * 31) + salt);
        }

        return b;
    }

    [Fact]
    public void Round_trips_names_shapes_dtypes_and_bytes_through_SafeTensorsFile()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("t.safetensors");
        var tensors = new List<(string, TensorDType, int[], byte[])>
        {
            ("a.f32", TensorDType.F32, [3, 5], Bytes(60, 1)),
            ("b.f16", TensorDType.F16, [7], Bytes(14, 2)),
            ("c.bf16", TensorDType.BF16, [2, 3, 4], Bytes(48, 3)),
            ("d.i32", TensorDType.I32, [], Bytes(4, 4)),
            ("e.empty", TensorDType.F16, [0, 4], []),
        };

        SafeTensorsWriter.WriteFile(path, tensors);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(tensors.Select(t => t.Item1).Order(StringComparer.Ordinal), file.TensorNames.Order(StringComparer.Ordinal));
        foreach (var (name, dtype, shape, data) in tensors)
        {
            var t = file.Get(name);
            Assert.Equal(dtype, t.DType);
            Assert.Equal(shape, t.Shape);
            Assert.Equal(data, t.Bytes.ToArray());
        }

        var raw = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal(8 + headerLength + 60 + 14 + 48 + 4, raw.Length);
        Assert.Equal((byte)'}', raw[8..(int)(8 + headerLength)].AsSpan().TrimEnd((byte)' ')[^1]);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Header_lists_tensors_in_the_order_added_and_can_omit_metadata()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("t.safetensors");
        SafeTensorsWriter.WriteFile(path, [("z", TensorDType.F32, [1], new byte[4]), ("a", TensorDType.F32, [1], new byte[4])], new Dictionary<string, string>());
        var header = System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(path)[8..]);
        Assert.DoesNotContain("__metadata__", header, StringComparison.Ordinal);
        Assert.True(header.IndexOf("\"z\"", StringComparison.Ordinal) < header.IndexOf("\"a\"", StringComparison.Ordinal));
        using var file = SafeTensorsFile.Open(path);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Streams_sources_in_element_aligned_blocks_in_parallel()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("s.safetensors");

        // Small chunks force many blocks per tensor; an odd F16 count puts the F32 tensor at an offset that is not
        // a multiple of 4 in the data section, yet its blocks must still start on element boundaries.
        var writer = new SafeTensorsWriter { ChunkBytes = 64, MaxDegreeOfParallelism = 4 };
        var calls = 0;
        var misaligned = 0;
        TensorDataSource Source(int elementSize, int salt) => (dst, offset) =>
        {
            Interlocked.Increment(ref calls);
            if (offset % elementSize != 0 || dst.Length % elementSize != 0)
            {
                Interlocked.Increment(ref misaligned);
            }

            for (var i = 0; i < dst.Length; i++)
            {
                dst[i] = (byte)(((offset + i) * 7) + salt);
            }
        };
        writer.AddTensor("odd.f16", TensorDType.F16, [333], Source(2, 1));
        writer.AddTensor("big.f32", TensorDType.F32, [17, 31], Source(4, 2));
        writer.AddTensor("mem", TensorDType.BF16, [5], Bytes(10, 9).AsMemory());
        var reported = new List<long>();
        writer.WriteFile(path, new SyncProgress(reported));

        Assert.Equal(0, misaligned);
        Assert.True(calls > 20);
        Assert.Equal(new FileInfo(path).Length, reported[^1]);
        Assert.Equal(writer.ComputeFileLength(), new FileInfo(path).Length);
        using var file = SafeTensorsFile.Open(path);
        var odd = file.Get("odd.f16").Bytes.ToArray();
        var big = file.Get("big.f32").Bytes.ToArray();
        Assert.Equal(666, odd.Length);
        Assert.Equal(17 * 31 * 4, big.Length);
        for (var i = 0; i < odd.Length; i++)
        {
            Assert.Equal((byte)((i * 7) + 1), odd[i]);
        }

        for (var i = 0; i < big.Length; i++)
        {
            Assert.Equal((byte)((i * 7) + 2), big[i]);
        }

        Assert.Equal(Bytes(10, 9), file.Get("mem").Bytes.ToArray());
    }

    [Fact]
    public void Stream_output_equals_file_output()
    {
        using var dir = new TempDirectory();
        var writer = new SafeTensorsWriter();
        writer.AddTensor("x", TensorDType.F16, [4, 4], Bytes(32, 5).AsMemory());
        var path = dir.Combine("x.safetensors");
        writer.WriteFile(path);
        using var ms = new MemoryStream();
        writer.WriteTo(ms);
        Assert.Equal(File.ReadAllBytes(path), ms.ToArray());
    }

    [Fact]
    public void Rejects_duplicates_wrong_sizes_and_reserved_names()
    {
        var writer = new SafeTensorsWriter();
        writer.AddTensor("a", TensorDType.F32, [2], new byte[8].AsMemory());
        Assert.Throws<ArgumentException>(() => writer.AddTensor("a", TensorDType.F32, [2], new byte[8].AsMemory()));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("b", TensorDType.F32, [3], new byte[8].AsMemory()));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("__metadata__", TensorDType.F32, [2], new byte[8].AsMemory()));
        Assert.Throws<ArgumentException>(() => writer.AddTensor("c", TensorDType.F32, [-1], (_, _) => { }));
        Assert.Equal(1, writer.Count);
        Assert.Equal(8, writer.DataLength);
    }

    [Fact]
    public void A_failing_source_leaves_no_file_behind()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("fail.safetensors");
        var writer = new SafeTensorsWriter { ChunkBytes = 64, MaxDegreeOfParallelism = 2 };
        writer.AddTensor("ok", TensorDType.F32, [1000], (dst, _) => dst.Clear());
        writer.AddTensor("bad", TensorDType.F32, [1000], (_, offset) =>
        {
            if (offset >= 128)
            {
                throw new InvalidDataException("boom");
            }
        });

        var e = Assert.Throws<InvalidDataException>(() => writer.WriteFile(path));
        Assert.Equal("boom", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void Cancellation_leaves_no_file_behind()
    {
        using var dir = new TempDirectory();
        using var cts = new CancellationTokenSource();
        var writer = new SafeTensorsWriter { ChunkBytes = 64 };
        writer.AddTensor("t", TensorDType.F32, [1000], (dst, offset) =>
        {
            if (offset > 256)
            {
                cts.Cancel();
            }

            dst.Clear();
        });

        Assert.ThrowsAny<OperationCanceledException>(() => writer.WriteFile(dir.Combine("c.safetensors"), null, cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    private sealed class SyncProgress(List<long> values) : IProgress<long>
    {
        public void Report(long value) => values.Add(value);
    }
}
