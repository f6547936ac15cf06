using KvFusion.Cache.Codecs;
using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.ExceptionServices;
using KvFusion.Cache.Chunks;

namespace KvFusion.Cache.Container;

/// <summary>
/// Reads KV containers (docs/kv-container.md) from memory, a <see cref="Stream"/> or a <see cref="PipeReader"/>.
/// Every length is checked against <see cref="KvContainerLimits"/> and the codec's bound before anything is
/// allocated, every checksum is verified, and sections decode in parallel straight into the entry's arrays.
/// </summary>
/// <remarks>
/// Every failure caused by the bytes is a <see cref="KvContainerException"/>; I/O errors of the source and
/// cancellation propagate as they are.
/// </remarks>
public static class KvContainerReader
{
    /// <summary>Reads and fully verifies a container held in memory (payloads are decoded in place, not copied).</summary>
    /// <exception cref="KvContainerException">The container is invalid or does not match <paramref name="expected"/>.</exception>
    public static CachedKv Read(ReadOnlyMemory<byte> blob, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null) =>
        ReadWithHiddenStates(blob, expected, options).Entry;

    /// <summary>Reads a container held in memory with its header and E-cache.</summary>
    /// <exception cref="KvContainerException">The container is invalid or does not match <paramref name="expected"/>.</exception>
    public static KvContainerContents ReadWithHiddenStates(ReadOnlyMemory<byte> blob, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null)
    {
        options ??= KvContainerReadOptions.Default;
        var sections = Locate(blob.Span, expected, options.Limits, options.Profiles, out var frames, out _);
        // Everything is verified before the decoded size is allocated.
        KvContainerSections.ForEach(sections.Count, options.MaxDegreeOfParallelism, i =>
        {
            var f = frames[i];
            sections.Verify(i, blob.Span.Slice(f.PayloadOffset, f.PayloadLength), f.Checksum, f.FrameOffset);
        });
        for (var i = 0; i < sections.Count; i++)
        {
            sections.EnsureAllocated(i);
        }

        KvContainerSections.ForEach(sections.Count, options.MaxDegreeOfParallelism, i =>
        {
            var f = frames[i];
            sections.Decode(i, blob.Span.Slice(f.PayloadOffset, f.PayloadLength), f.FrameOffset);
        });
        return sections.Result();
    }

    /// <summary>Reads a container from a stream, section by section as it arrives; the stream must end with the container.</summary>
    /// <exception cref="KvContainerException">The container is invalid (a stream that ends early is <see cref="KvContainerError.Truncated"/>).</exception>
    public static async ValueTask<CachedKv> ReadAsync(Stream source, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null, CancellationToken cancellationToken = default) =>
        (await ReadWithHiddenStatesAsync(source, expected, options, cancellationToken).ConfigureAwait(false)).Entry;

    /// <summary>Reads a container from a pipe, section by section as it arrives; the pipe must complete after the container.</summary>
    /// <remarks>The reader consumes the pipe up to its end but does not complete it: the caller owns it.</remarks>
    /// <exception cref="KvContainerException">The container is invalid (a pipe that completes early is <see cref="KvContainerError.Truncated"/>).</exception>
    public static async ValueTask<CachedKv> ReadAsync(PipeReader source, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null, CancellationToken cancellationToken = default) =>
        (await ReadWithHiddenStatesAsync(source, expected, options, cancellationToken).ConfigureAwait(false)).Entry;

    /// <summary>Reads a container with its header and E-cache from a stream.</summary>
    /// <exception cref="KvContainerException">The container is invalid or does not match <paramref name="expected"/>.</exception>
    public static ValueTask<KvContainerContents> ReadWithHiddenStatesAsync(Stream source, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        return ReadStreamingAsync(new StreamByteSource(source), expected, options ?? KvContainerReadOptions.Default, cancellationToken);
    }

    /// <summary>Reads a container with its header and E-cache from a pipe (which the caller keeps owning).</summary>
    /// <exception cref="KvContainerException">The container is invalid or does not match <paramref name="expected"/>.</exception>
    public static ValueTask<KvContainerContents> ReadWithHiddenStatesAsync(PipeReader source, KvContainerExpectation? expected = null, KvContainerReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        return ReadStreamingAsync(new PipeByteSource(source), expected, options ?? KvContainerReadOptions.Default, cancellationToken);
    }

    /// <summary>Reads the header of a container (or of its first bytes), verifying the header checksum only.</summary>
    /// <exception cref="KvContainerException">The preamble or header is invalid.</exception>
    public static KvContainerHeader ReadHeader(ReadOnlySpan<byte> blob, KvContainerReadOptions? options = null) =>
        ReadHeader(blob, (options ?? KvContainerReadOptions.Default).Limits, null);

    /// <summary>
    /// Checks a container's structure (header, every frame, the lengths) and every checksum without decoding the
    /// sections: one hash pass over the bytes, what a storage tier runs before it trusts a blob it read back.
    /// </summary>
    /// <returns>The header.</returns>
    /// <exception cref="KvContainerException">The container is invalid, or names a codec or profile this reader lacks
    /// (<see cref="KvContainerError.UnknownCodec"/>, <see cref="KvContainerError.MissingProfile"/>).</exception>
    public static KvContainerHeader Verify(ReadOnlySpan<byte> blob, KvContainerReadOptions? options = null)
    {
        options ??= KvContainerReadOptions.Default;
        var sections = Locate(blob, null, options.Limits, options.Profiles, out var frames, out _);
        for (var i = 0; i < frames.Length; i++)
        {
            sections.Verify(i, blob.Slice(frames[i].PayloadOffset, frames[i].PayloadLength), frames[i].Checksum, frames[i].FrameOffset);
        }

        return sections.Header;
    }

    /// <summary>
    /// Verifies a whole container, decoding every section, and says where each section is.
    /// </summary>
    /// <exception cref="KvContainerException">The container is invalid.</exception>
    public static KvContainerInspection Inspect(ReadOnlyMemory<byte> blob, KvContainerReadOptions? options = null)
    {
        options ??= KvContainerReadOptions.Default;
        var contents = ReadWithHiddenStates(blob, null, options);
        Locate(blob.Span, null, options.Limits, options.Profiles, out var frames, out var headerBytes);
        var infos = new KvContainerSectionInfo[frames.Length];
        for (var i = 0; i < frames.Length; i++)
        {
            var shape = contents.Header.SectionShape(i);
            infos[i] = new KvContainerSectionInfo(i, shape.Layer, shape.Kind, frames[i].FrameOffset, frames[i].PayloadLength, frames[i].Checksum);
        }

        return new KvContainerInspection { Header = contents.Header, Sections = infos, TotalBytes = blob.Length, HeaderBytes = headerBytes };
    }

    /// <summary>The header and every field's place (for layout-aware tests and tools).</summary>
    internal static KvContainerHeader ReadHeader(ReadOnlySpan<byte> blob, KvContainerLimits limits, List<KvContainerField>? fields) =>
        ReadHeader(blob, limits, fields, out _);

    private static KvContainerHeader ReadHeader(ReadOnlySpan<byte> blob, KvContainerLimits limits, List<KvContainerField>? fields, out ulong checksum)
    {
        var headerLength = KvContainerFormat.ReadPreamble(blob, limits);
        var region = KvContainerFormat.HeaderRegionLength(headerLength);
        if (blob.Length < region)
        {
            throw new KvContainerException(KvContainerError.Truncated, $"The container ends after {blob.Length} bytes, inside its {region}-byte header.", blob.Length);
        }

        return KvContainerFormat.ParseHeader(blob[..region], headerLength, limits, fields, out checksum);
    }

    /// <summary>Parses the header and walks every frame (lengths, truncation, trailing bytes) without decoding.</summary>
    private static KvContainerSections Locate(ReadOnlySpan<byte> blob, KvContainerExpectation? expected, KvContainerLimits limits, KvCodecProfiles profiles, out Frame[] frames, out int headerBytes)
    {
        var header = ReadHeader(blob, limits, null, out var checksum);
        var sections = KvContainerSections.Create(header, checksum, expected, limits, profiles);
        headerBytes = KvContainerFormat.HeaderRegionLength(KvContainerFormat.ReadPreamble(blob, limits));
        frames = new Frame[sections.Count];
        var at = headerBytes;
        for (var i = 0; i < frames.Length; i++)
        {
            try
            {
                frames[i] = WalkFrame(blob, sections, i, at);
            }
            catch (KvContainerException)
            {
                // A stream reader verifies each section before it reads the next frame, so an earlier section's
                // checksum failure is what it reports (a wrong length shows up there first): report the same.
                for (var j = 0; j < i; j++)
                {
                    sections.Verify(j, blob.Slice(frames[j].PayloadOffset, frames[j].PayloadLength), frames[j].Checksum, frames[j].FrameOffset);
                }

                throw;
            }

            at = frames[i].PayloadOffset + frames[i].PayloadLength;
        }

        if (at != blob.Length)
        {
            // As above: a last section made shorter fails its checksum before the bytes after it are seen.
            for (var j = 0; j < frames.Length; j++)
            {
                sections.Verify(j, blob.Slice(frames[j].PayloadOffset, frames[j].PayloadLength), frames[j].Checksum, frames[j].FrameOffset);
            }

            throw new KvContainerException(KvContainerError.TrailingData, $"{blob.Length - at} bytes follow the last section.", at);
        }

        return sections;
    }

    private static Frame WalkFrame(ReadOnlySpan<byte> blob, KvContainerSections sections, int index, int at)
    {
        if (blob.Length - at < KvContainerFormat.FrameLength)
        {
            throw Truncated(index, sections.Header, blob.Length, "frame");
        }

        var length = sections.CheckFrame(blob.Slice(at, KvContainerFormat.FrameLength), index, at, out var checksum);
        var payloadAt = at + KvContainerFormat.FrameLength;
        if (payloadAt + length > sections.Limits.MaxTotalBytes)
        {
            throw TooLong(sections.Limits, payloadAt);
        }

        if (length > blob.Length - payloadAt)
        {
            throw Truncated(index, sections.Header, blob.Length, "payload");
        }

        return new Frame(at, payloadAt, (int)length, checksum);
    }

    private static async ValueTask<KvContainerContents> ReadStreamingAsync(ByteSource source, KvContainerExpectation? expected, KvContainerReadOptions options, CancellationToken ct)
    {
        var limits = options.Limits;
        var preamble = new byte[KvContainerFormat.PreambleLength];
        var got = await source.ReadAtMostAsync(preamble, ct).ConfigureAwait(false);
        var headerLength = KvContainerFormat.ReadPreamble(preamble.AsSpan(0, got), limits);
        var regionLength = KvContainerFormat.HeaderRegionLength(headerLength);
        var (region, regionCount) = await source.ReadGrowingAsync(preamble, regionLength, ct).ConfigureAwait(false);
        KvContainerSections sections;
        try
        {
            if (regionCount < regionLength)
            {
                throw new KvContainerException(KvContainerError.Truncated, $"The container ends after {regionCount} bytes, inside its {regionLength}-byte header.", regionCount);
            }

            var header = KvContainerFormat.ParseHeader(region.AsSpan(0, regionLength), headerLength, limits, null, out var checksum);
            sections = KvContainerSections.Create(header, checksum, expected, limits, options.Profiles);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(region);
        }

        var degree = options.MaxDegreeOfParallelism;
        var inFlight = new Queue<Task<Exception?>>();
        var frame = new byte[KvContainerFormat.FrameLength];
        Exception? failure = null;
        var failureIsDecode = false;
        try
        {
            for (var i = 0; i < sections.Count; i++)
            {
                var frameOffset = source.Position;
                if (await source.ReadAtMostAsync(frame, ct).ConfigureAwait(false) < frame.Length)
                {
                    throw Truncated(i, sections.Header, source.Position, "frame");
                }

                var length = (int)sections.CheckFrame(frame, i, frameOffset, out var checksum);
                if (source.Position + length > limits.MaxTotalBytes)
                {
                    throw TooLong(limits, source.Position);
                }

                var (payload, count) = await source.ReadGrowingAsync(ReadOnlyMemory<byte>.Empty, length, ct).ConfigureAwait(false);
                try
                {
                    if (count < length)
                    {
                        throw Truncated(i, sections.Header, source.Position, "payload");
                    }

                    sections.Verify(i, payload.AsSpan(0, length), checksum, frameOffset);
                    sections.EnsureAllocated(i);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(payload);
                    throw;
                }

                if (degree <= 1)
                {
                    failureIsDecode = true;
                    DecodeAndReturn(sections, i, payload, length, frameOffset);
                    failureIsDecode = false;
                    continue;
                }

                if (inFlight.Count >= degree && await inFlight.Dequeue().ConfigureAwait(false) is { } error)
                {
                    failureIsDecode = true;
                    ExceptionDispatchInfo.Throw(error);
                }

                var index = i;
                inFlight.Enqueue(Task.Run(() => DecodeCaptured(sections, index, payload, length, frameOffset), CancellationToken.None));
            }

            while (inFlight.Count > 0)
            {
                if (await inFlight.Dequeue().ConfigureAwait(false) is { } error)
                {
                    failureIsDecode = true;
                    ExceptionDispatchInfo.Throw(error);
                }
            }

            var end = source.Position;
            if (await source.ReadAtMostAsync(frame.AsMemory(0, 1), ct).ConfigureAwait(false) != 0)
            {
                throw new KvContainerException(KvContainerError.TrailingData, "Bytes follow the last section.", end);
            }
        }
#pragma warning disable CA1031 // Rethrown below, after the decodes in flight finished.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
        }

        // Wait for every decode in flight, so none outlives the call. They are of earlier sections than a read
        // failure, so their first error is the container's first and is reported instead; after a decode failure
        // they are later sections and are ignored.
        while (inFlight.Count > 0)
        {
            if (await inFlight.Dequeue().ConfigureAwait(false) is { } error && !failureIsDecode)
            {
                failure = error;
                failureIsDecode = true;
            }
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
        }

        return sections.Result();
    }

    private static Exception? DecodeCaptured(KvContainerSections sections, int index, byte[] payload, int length, long frameOffset)
    {
        try
        {
            DecodeAndReturn(sections, index, payload, length, frameOffset);
            return null;
        }
#pragma warning disable CA1031 // Handed to the reading loop, which rethrows it in section order.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return e;
        }
    }

    private static void DecodeAndReturn(KvContainerSections sections, int index, byte[] payload, int length, long frameOffset)
    {
        try
        {
            sections.Decode(index, payload.AsSpan(0, length), frameOffset);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    private static KvContainerException TooLong(KvContainerLimits limits, long offset) =>
        new(KvContainerError.LimitExceeded, $"The container is longer than the limit of {limits.MaxTotalBytes} bytes.", offset);

    private static KvContainerException Truncated(int index, KvContainerHeader header, long offset, string part) =>
        new(KvContainerError.Truncated, $"The container ends at byte {offset}, inside {KvContainerFormat.Describe(index, header.SectionShape(index))}'s {part}.", offset);

    private readonly record struct Frame(int FrameOffset, int PayloadOffset, int PayloadLength, ulong Checksum);
}
