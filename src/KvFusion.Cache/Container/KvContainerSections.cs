using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Codecs.Entropy;

namespace KvFusion.Cache.Container;

/// <summary>
/// What the reader knows after the header: the codec rebuilt from its parameters, each section's shape and payload
/// bound, and the arrays that sections decode into.
/// </summary>
internal sealed class KvContainerSections
{
    private readonly long[] _maxPayload;
    private Half[]? _keys;
    private Half[]? _values;
    private readonly Half[]?[] _hidden;

    private readonly ulong _headerChecksum;

    private KvContainerSections(KvContainerHeader header, ulong headerChecksum, KvSectionCodec codec, KvContainerLimits limits)
    {
        Header = header;
        _headerChecksum = headerChecksum;
        Codec = codec;
        Limits = limits;
        _maxPayload = new long[header.SectionCount];
        _hidden = new Half[header.HiddenStateLayers.Count][];
        for (var i = 0; i < _maxPayload.Length; i++)
        {
            _maxPayload[i] = codec.MaxEncodedLength(header.SectionShape(i));
        }
    }

    public KvContainerHeader Header { get; }

    public KvSectionCodec Codec { get; }

    public KvContainerLimits Limits { get; }

    public int Count => _maxPayload.Length;

    /// <summary>Checks the header against the expectation and rebuilds its codec.</summary>
    /// <exception cref="KvContainerException">Shape or fingerprint mismatch, an unavailable codec or invalid codec parameters.</exception>
    public static KvContainerSections Create(KvContainerHeader header, ulong headerChecksum, KvContainerExpectation? expected, KvContainerLimits limits, KvCodecProfiles profiles)
    {
        if (expected is not null)
        {
            Expect(header, expected);
        }

        KvSectionCodec codec;
        try
        {
            codec = KvCodecFactory.ForDecoding(header.Codec, header.CodecParameters.Span, header.Shape, profiles);
        }
        catch (NotSupportedException e)
        {
            throw new KvContainerException(KvContainerError.UnknownCodec, $"The container's codec {header.Codec} is not available in this build.", KvContainerFormat.PreambleLength + 2, e);
        }
        catch (KvCodecException e) when (e.MissingProfileId is not null)
        {
            throw new KvContainerException(KvContainerError.MissingProfile, e.Message, KvContainerFormat.PreambleLength + 2, e);
        }
        catch (KvCodecException e)
        {
            throw new KvContainerException(KvContainerError.Malformed, $"The {header.Codec} codec parameters are invalid: {e.Message}", KvContainerFormat.PreambleLength + 2, e);
        }

        return new KvContainerSections(header, headerChecksum, codec, limits);
    }

    /// <summary>Validates section <paramref name="index"/>'s frame and returns its payload length.</summary>
    /// <exception cref="KvContainerException">A wrong index or kind, nonzero reserved bytes, or a length above the limit or the codec's bound.</exception>
    public long CheckFrame(ReadOnlySpan<byte> frame, int index, long offset, out ulong checksum)
    {
        var shape = Header.SectionShape(index);
        var storedIndex = BinaryPrimitives.ReadUInt32LittleEndian(frame);
        if (storedIndex != (uint)index)
        {
            throw new KvContainerException(KvContainerError.Malformed, $"{KvContainerFormat.Describe(index, shape)}: the frame says section {storedIndex}.", offset);
        }

        if (frame[4] != (byte)shape.Kind)
        {
            throw new KvContainerException(KvContainerError.Malformed, $"{KvContainerFormat.Describe(index, shape)}: the frame says kind {frame[4]}, expected {(byte)shape.Kind} ({shape.Kind}).", offset + 4);
        }

        if (frame[5] != 0 || frame[6] != 0 || frame[7] != 0)
        {
            throw new KvContainerException(KvContainerError.Malformed, $"{KvContainerFormat.Describe(index, shape)}: the frame's reserved bytes are not zero.", offset + 5);
        }

        var length = BinaryPrimitives.ReadUInt64LittleEndian(frame[8..]);
        if (length > (ulong)Limits.MaxSectionBytes)
        {
            throw new KvContainerException(KvContainerError.LimitExceeded, $"{KvContainerFormat.Describe(index, shape)}: the payload is {length} bytes; the limit is {Limits.MaxSectionBytes}.", offset + 8);
        }

        if (length > (ulong)_maxPayload[index])
        {
            throw new KvContainerException(KvContainerError.Malformed, $"{KvContainerFormat.Describe(index, shape)}: the payload is {length} bytes; the {Header.Codec} codec writes at most {_maxPayload[index]} for this shape.", offset + 8);
        }

        checksum = BinaryPrimitives.ReadUInt64LittleEndian(frame[16..]);
        return (long)length;
    }

    /// <summary>
    /// Allocates the array section <paramref name="index"/> decodes into, unless it exists. Called on the reading
    /// thread once the section verified, so bytes that fail verification never cost the decoded size.
    /// </summary>
    public void EnsureAllocated(int index)
    {
        var h = Header;
        var kv = 2 * h.LayerCount;
        if (index >= kv)
        {
            _hidden[index - kv] ??= new Half[(long)h.TokenCount * h.HiddenSize];
        }
        else if ((index & 1) == 0)
        {
            _keys ??= new Half[(long)h.LayerCount * h.KvHeads * h.TokenCount * h.HeadDim];
        }
        else
        {
            _values ??= new Half[(long)h.LayerCount * h.KvHeads * h.TokenCount * h.HeadDim];
        }
    }

    /// <summary>Decodes verified section <paramref name="index"/> into its place in the (allocated) arrays.</summary>
    /// <exception cref="KvContainerException">The codec cannot decode the payload.</exception>
    public void Decode(int index, ReadOnlySpan<byte> payload, long frameOffset)
    {
        var shape = Header.SectionShape(index);

        try
        {
            Codec.Decode(payload, shape, Destination(index, shape));
        }
        catch (KvCodecException e)
        {
            throw Corrupt(index, shape, frameOffset, e);
        }
        catch (EntropyStreamException e)
        {
            throw Corrupt(index, shape, frameOffset, e);
        }
    }

    /// <summary>Verifies section <paramref name="index"/>'s checksum.</summary>
    /// <exception cref="KvContainerException">Checksum mismatch.</exception>
    public void Verify(int index, ReadOnlySpan<byte> payload, ulong storedChecksum, long frameOffset)
    {
        var computed = KvContainerFormat.SectionChecksum(payload, _headerChecksum);
        if (computed != storedChecksum)
        {
            throw new KvContainerException(KvContainerError.SectionChecksumMismatch,
                $"{KvContainerFormat.Describe(index, Header.SectionShape(index))}: checksum mismatch (stored 0x{storedChecksum:x16}, computed 0x{computed:x16}).", frameOffset + 16);
        }
    }

    /// <summary>The decoded contents (after every section decoded).</summary>
    public KvContainerContents Result()
    {
        var h = Header;
        var ids = h.TokenIds is null ? null : (int[])h.TokenIds;
        var entry = new CachedKv(h.Key, h.ModelFingerprint, h.TokenizerFingerprint, ids, h.TokenCount, h.LayerCount, h.KvHeads, h.HeadDim, _keys!, _values!);
        var hidden = _hidden.Length == 0 ? null : new KvHiddenStates(h.TokenCount, h.HiddenSize, h.HiddenStateLayers, _hidden!);
        // The entry carries its E-cache, so whoever stores it again (a tier below, a re-encode) keeps it.
        return new KvContainerContents { Header = h, Entry = hidden is null ? entry : entry.WithHiddenStates(hidden), HiddenStates = hidden };
    }

    /// <summary>
    /// Runs <paramref name="body"/> for every section, up to <paramref name="degree"/> at once, and throws the error of
    /// the lowest failing section (the same one a sequential run reports).
    /// </summary>
    public static void ForEach(int count, int degree, Action<int> body)
    {
        if (degree <= 1 || count <= 1)
        {
            for (var i = 0; i < count; i++)
            {
                body(i);
            }

            return;
        }

        var errors = new Exception?[count];
        var lowestFailed = count;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = degree }, i =>
        {
            // Sections after a known failure are skipped; those before it still run, so the lowest failure is found.
            if (i > Volatile.Read(ref lowestFailed))
            {
                return;
            }

            try
            {
                body(i);
            }
#pragma warning disable CA1031 // Every failure is rethrown below, the lowest section's first.
            catch (Exception e)
#pragma warning restore CA1031
            {
                errors[i] = e;
                int seen;
                while (i < (seen = Volatile.Read(ref lowestFailed)) && Interlocked.CompareExchange(ref lowestFailed, i, seen) != seen)
                {
                }
            }
        });
        if (lowestFailed < count)
        {
            ExceptionDispatchInfo.Capture(errors[lowestFailed]!).Throw();
        }
    }

    private static void Expect(KvContainerHeader header, KvContainerExpectation expected)
    {
        if (!string.Equals(header.ModelFingerprint, expected.ModelFingerprint, StringComparison.Ordinal))
        {
            throw new KvContainerException(KvContainerError.FingerprintMismatch,
                $"The container was computed by model {header.ModelFingerprint}, not the expected {expected.ModelFingerprint}.");
        }

        if (!string.Equals(header.TokenizerFingerprint, expected.TokenizerFingerprint, StringComparison.Ordinal))
        {
            throw new KvContainerException(KvContainerError.FingerprintMismatch,
                $"The container's tokenizer is {header.TokenizerFingerprint}, not the expected {expected.TokenizerFingerprint}.");
        }

        if (header.LayerCount != expected.LayerCount || header.KvHeads != expected.KvHeads || header.HeadDim != expected.HeadDim)
        {
            throw new KvContainerException(KvContainerError.ShapeMismatch,
                $"The container holds {header.LayerCount} layers × {header.KvHeads} KV heads × head dim {header.HeadDim}; expected {expected.LayerCount} × {expected.KvHeads} × {expected.HeadDim}.");
        }
    }

    private static KvContainerException Corrupt(int index, in KvSectionShape shape, long frameOffset, Exception e) =>
        new(KvContainerError.CorruptSection, $"{KvContainerFormat.Describe(index, shape)}: {e.Message}", frameOffset + KvContainerFormat.FrameLength, e);

    private Span<Half> Destination(int index, in KvSectionShape shape)
    {
        var kv = 2 * Header.LayerCount;
        if (index < kv)
        {
            var stride = (int)shape.ValueCount;
            return (shape.Kind == KvSectionKind.Keys ? _keys! : _values!).AsSpan(shape.Layer * stride, stride);
        }

        return _hidden[index - kv];
    }
}
