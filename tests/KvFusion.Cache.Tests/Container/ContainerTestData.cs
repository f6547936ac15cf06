using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;

namespace KvFusion.Cache.Tests.Container;

/// <summary>Synthetic entries with deterministic values, and sources that deliver bytes awkwardly.</summary>
internal static class ContainerTestData
{
    public const string Model = KvTestEntries.Model;
    public const string Tokenizer = KvTestEntries.Tokenizer;

    /// <summary>An entry whose values look like KV: smooth across tokens, a few outlier channels, all finite.</summary>
    public static CachedKv Entry(int layers = 3, int heads = 2, int tokens = 7, int headDim = 8, int seed = 1, bool tokenIds = true)
    {
        var rng = new Random(seed);
        var ids = new int[tokens];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = rng.Next(0, 50_000);
        }

        var key = new CacheKey(CacheEntryKind.Chunk, ChunkId.Compute(Model, Tokenizer, ids).ToString(), "sink:bos");
        var n = layers * heads * tokens * headDim;
        var keys = Values(rng, n, headDim);
        var values = Values(rng, n, headDim);
        return tokenIds
            ? new CachedKv(key, Model, Tokenizer, ids, layers, heads, headDim, keys, values)
            : new CachedKv(key, Model, Tokenizer, null, tokens, layers, heads, headDim, keys, values);
    }

    public static KvHiddenStates Hidden(CachedKv entry, int hiddenSize, int[] layers, int seed = 7)
    {
        var rng = new Random(seed);
        var states = new Half[layers.Length][];
        for (var i = 0; i < states.Length; i++)
        {
            states[i] = Values(rng, entry.TokenCount * hiddenSize, hiddenSize);
        }

        return new KvHiddenStates(entry.TokenCount, hiddenSize, layers, states);
    }

    public static Half[] Values(Random rng, int count, int width)
    {
        var v = new Half[count];
        var walk = 0.0;
        for (var i = 0; i < v.Length; i++)
        {
            walk = (0.9 * walk) + (0.3 * ((rng.NextDouble() * 2) - 1));
            var outlier = i % width == 3 ? 8.0 : 1.0;
            v[i] = (Half)(walk * outlier);
        }

        return v;
    }

    /// <summary>The codecs this build can encode (the others are being built behind the same factory).</summary>
    public static IEnumerable<KvCodecSpec> AvailableCodecs()
    {
        var shape = new KvEntryShape(2, 2, 8, 5);
        foreach (var spec in KvCodecSpec.All)
        {
            bool available;
            try
            {
                KvCodecFactory.ForEncoding(spec, shape);
                available = true;
            }
            catch (NotSupportedException)
            {
                available = false;
            }

            if (available)
            {
                yield return spec;
            }
        }
    }

    public static void AssertSame(CachedKv expected, CachedKv actual)
    {
        Assert.Equal(expected.Key, actual.Key);
        Assert.Equal(expected.ModelFingerprint, actual.ModelFingerprint);
        Assert.Equal(expected.TokenizerFingerprint, actual.TokenizerFingerprint);
        Assert.Equal(expected.LayerCount, actual.LayerCount);
        Assert.Equal(expected.KvHeads, actual.KvHeads);
        Assert.Equal(expected.HeadDim, actual.HeadDim);
        Assert.Equal(expected.TokenCount, actual.TokenCount);
        Assert.True(Bits(expected.Keys).SequenceEqual(Bits(actual.Keys)), "K differs");
        Assert.True(Bits(expected.Values).SequenceEqual(Bits(actual.Values)), "V differs");
    }

    public static ReadOnlySpan<ushort> Bits(ReadOnlySpan<Half> values) => System.Runtime.InteropServices.MemoryMarshal.Cast<Half, ushort>(values);
}

/// <summary>A read-only stream that returns at most <c>chunk</c> bytes per read.</summary>
internal sealed class TrickleStream(byte[] data, int chunk = 1) : Stream
{
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Edits a container's bytes by field name, keeping (or not) its checksums valid.</summary>
internal static class ContainerBytes
{
    public static List<KvContainerField> Fields(byte[] blob)
    {
        // Resealed first, so the layout of an already edited container can be read too.
        var fields = new List<KvContainerField>();
        KvContainerReader.ReadHeader(Reseal((byte[])blob.Clone()), KvContainerLimits.Default, fields);
        return fields;
    }

    public static KvContainerField Field(byte[] blob, string name) => Fields(blob).Single(f => f.Name == name);

    public static int HeaderEnd(byte[] blob) => 16 + (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(12));

    /// <summary>Recomputes the header checksum after an edit, so the edit reaches the field checks.</summary>
    public static byte[] Reseal(byte[] blob)
    {
        var end = HeaderEnd(blob);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(end), System.IO.Hashing.XxHash64.HashToUInt64(blob.AsSpan(0, end)));
        return blob;
    }

    public static byte[] SetU32(byte[] blob, string field, uint value)
    {
        var copy = (byte[])blob.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(Field(blob, field).Offset), value);
        return copy;
    }

    public static byte[] SetU8(byte[] blob, string field, byte value)
    {
        var copy = (byte[])blob.Clone();
        copy[Field(blob, field).Offset] = value;
        return copy;
    }

    /// <summary>Recomputes section <paramref name="index"/>'s payload checksum.</summary>
    public static byte[] ResealSection(byte[] blob, int index)
    {
        var s = KvContainerReader.Inspect(blob, Lenient).Sections[index];
        return ResealSectionAt(blob, (int)s.Offset);
    }

    public static byte[] ResealSectionAt(byte[] blob, int frameOffset)
    {
        var length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(frameOffset + 8));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(blob.AsSpan(frameOffset + 16), SectionChecksum(blob, blob.AsSpan(frameOffset + 24, length)));
        return blob;
    }

    /// <summary>A payload's checksum in <paramref name="blob"/>: xxHash64 seeded with the stored header checksum.</summary>
    public static ulong SectionChecksum(byte[] blob, ReadOnlySpan<byte> payload) =>
        System.IO.Hashing.XxHash64.HashToUInt64(payload, (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(HeaderEnd(blob))));

    public static KvContainerReadOptions Lenient { get; } = new() { MaxDegreeOfParallelism = 1 };
}
