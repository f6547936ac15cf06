using System.Buffers;
using System.Diagnostics;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;

namespace KvFusion.Cache.Container;

/// <summary>
/// Writes KV containers (docs/kv-container.md): header, then K and V of every layer and the optional E-cache, each
/// section encoded with the codec (in parallel, a window of sections at a time) and framed with its length and
/// xxHash64.
/// </summary>
public static class KvContainerWriter
{
    /// <summary>Writes <paramref name="entry"/> (with its E-cache, when it has one) as a container into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The codec is not valid, or the entry cannot be written (an id that is not lowercase hex, an empty fingerprint, no tokens).</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static KvContainerWriteResult Write(IBufferWriter<byte> destination, CachedKv entry, KvCodecSpec codec, KvContainerWriteOptions? options = null) =>
        Write(destination, entry, entry?.HiddenStates, codec, options);

    /// <summary>Writes <paramref name="entry"/> and its E-cache (when not null) as a container into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException">The codec is not valid, the entry cannot be written, or the E-cache does not fit the entry.</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static KvContainerWriteResult Write(IBufferWriter<byte> destination, CachedKv entry, KvHiddenStates? hiddenStates, KvCodecSpec codec, KvContainerWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var plan = new WritePlan(entry, hiddenStates, codec, options ?? KvContainerWriteOptions.Default);
        destination.Write(plan.HeaderRegion);
        for (var start = 0; start < plan.SectionCount; start += plan.Window)
        {
            var window = plan.EncodeWindow(start);
            try
            {
                for (var i = 0; i < window.Length; i++)
                {
                    ref readonly var s = ref window[i];
                    var span = destination.GetSpan(KvContainerFormat.FrameLength + s.Length);
                    KvContainerFormat.WriteFrame(span, start + i, plan.Header.SectionShape(start + i).Kind, s.Length, s.Checksum);
                    s.Buffer.AsSpan(0, s.Length).CopyTo(span[KvContainerFormat.FrameLength..]);
                    destination.Advance(KvContainerFormat.FrameLength + s.Length);
                }
            }
            finally
            {
                WritePlan.Release(window);
            }
        }

        return plan.Result();
    }

    /// <summary>The container of <paramref name="entry"/> as a new array.</summary>
    /// <exception cref="ArgumentException">The codec is not valid or the entry cannot be written.</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static byte[] ToArray(CachedKv entry, KvCodecSpec codec, KvContainerWriteOptions? options = null) => ToArray(entry, entry?.HiddenStates, codec, options);

    /// <summary>The container of <paramref name="entry"/> and its E-cache as a new array.</summary>
    /// <exception cref="ArgumentException">The codec is not valid, the entry cannot be written, or the E-cache does not fit the entry.</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static byte[] ToArray(CachedKv entry, KvHiddenStates? hiddenStates, KvCodecSpec codec, KvContainerWriteOptions? options = null)
    {
        var buffer = new ArrayBufferWriter<byte>();
        Write(buffer, entry, hiddenStates, codec, options);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes <paramref name="entry"/> (with its E-cache, when it has one) as a container to a stream; the next window of sections encodes while one is written.</summary>
    /// <exception cref="ArgumentException">The codec is not valid or the entry cannot be written.</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static ValueTask<KvContainerWriteResult> WriteAsync(Stream destination, CachedKv entry, KvCodecSpec codec, KvContainerWriteOptions? options = null, CancellationToken cancellationToken = default) =>
        WriteAsync(destination, entry, entry?.HiddenStates, codec, options, cancellationToken);

    /// <summary>Writes <paramref name="entry"/> and its E-cache (when not null) as a container to a stream.</summary>
    /// <exception cref="ArgumentException">The codec is not valid, the entry cannot be written, or the E-cache does not fit the entry.</exception>
    /// <exception cref="NotSupportedException">The codec is not available in this build.</exception>
    public static async ValueTask<KvContainerWriteResult> WriteAsync(Stream destination, CachedKv entry, KvHiddenStates? hiddenStates, KvCodecSpec codec, KvContainerWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var plan = new WritePlan(entry, hiddenStates, codec, options ?? KvContainerWriteOptions.Default);
        await destination.WriteAsync(plan.HeaderRegion, cancellationToken).ConfigureAwait(false);
        var frame = new byte[KvContainerFormat.FrameLength];
        var next = plan.SectionCount > 0 ? Task.Run(() => plan.EncodeWindow(0), cancellationToken) : null;
        for (var start = 0; next is not null; start += plan.Window)
        {
            var window = await next.ConfigureAwait(false);
            next = start + plan.Window < plan.SectionCount ? StartWindow(plan, start + plan.Window, cancellationToken) : null;
            try
            {
                for (var i = 0; i < window.Length; i++)
                {
                    var s = window[i];
                    KvContainerFormat.WriteFrame(frame, start + i, plan.Header.SectionShape(start + i).Kind, s.Length, s.Checksum);
                    await destination.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
                    await destination.WriteAsync(s.Buffer.AsMemory(0, s.Length), cancellationToken).ConfigureAwait(false);
                }
            }
            catch
            {
                // The encode in flight gives its pooled buffers back whenever it finishes; the write error is what counts.
                _ = next?.ContinueWith(t => WritePlan.Release(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);

                throw;
            }
            finally
            {
                WritePlan.Release(window);
            }
        }

        return plan.Result();
    }

    private static Task<EncodedSection[]> StartWindow(WritePlan plan, int start, CancellationToken ct) => Task.Run(() => plan.EncodeWindow(start), ct);

    private readonly record struct EncodedSection(byte[] Buffer, int Length, ulong Checksum);

    /// <summary>What writing one entry needs: header, codec, section sources and the running totals.</summary>
    private sealed class WritePlan
    {
        private readonly CachedKv _entry;
        private readonly KvHiddenStates? _hidden;
        private readonly KvSectionCodec _codec;
        private readonly int _degree;
        private readonly ulong _headerChecksum;
        private long _payloadBytes;
        private long _statisticsBytes;
        private long _encodeTicks;

        public WritePlan(CachedKv entry, KvHiddenStates? hidden, KvCodecSpec spec, KvContainerWriteOptions options)
        {
            ArgumentNullException.ThrowIfNull(entry);
            _entry = entry;
            _hidden = hidden;
            _degree = options.MaxDegreeOfParallelism;
            if (hidden is not null)
            {
                if (hidden.TokenCount != entry.TokenCount)
                {
                    throw new ArgumentException($"The E-cache has {hidden.TokenCount} tokens; the entry {entry.TokenCount}.", nameof(hidden));
                }

                if (hidden.Layers[^1] >= entry.LayerCount)
                {
                    throw new ArgumentException($"E-cache layer {hidden.Layers[^1]} is not below the entry's {entry.LayerCount} layers.", nameof(hidden));
                }
            }

            var shape = new KvEntryShape(entry.LayerCount, entry.KvHeads, entry.HeadDim, entry.TokenCount);
            _codec = KvCodecFactory.ForEncoding(spec, shape, entry.ModelFingerprint, options.Profiles, options.CacheGenTuning);
            var parameters = new byte[_codec.ParametersLength];
            _codec.WriteParameters(parameters);
            Header = new KvContainerHeader
            {
                Key = entry.Key,
                ModelFingerprint = entry.ModelFingerprint,
                TokenizerFingerprint = entry.TokenizerFingerprint,
                TokenCount = entry.TokenCount,
                LayerCount = entry.LayerCount,
                KvHeads = entry.KvHeads,
                HeadDim = entry.HeadDim,
                Codec = spec,
                CodecParameters = parameters,
                TokenIds = options.IncludeTokenIds && entry.HasTokenIds ? entry.Tokens : null,
                HiddenStateLayers = hidden?.Layers ?? [],
                HiddenSize = hidden?.HiddenSize ?? 0,
            };
            KvContainerFormat.ValidateForWriting(Header);
            var headerLength = KvContainerFormat.MeasureHeader(Header);
            HeaderRegion = new byte[KvContainerFormat.HeaderRegionLength(headerLength)];
            _headerChecksum = KvContainerFormat.Write(Header, headerLength, HeaderRegion);
            SectionCount = Header.SectionCount;
            Window = Math.Max(1, 2 * _degree);
        }

        public KvContainerHeader Header { get; }

        /// <summary>Preamble, header and header checksum, as written.</summary>
        public byte[] HeaderRegion { get; }

        public int HeaderBytes => HeaderRegion.Length;

        public int SectionCount { get; }

        /// <summary>Sections encoded per window: enough to keep every worker busy, few enough to bound memory.</summary>
        public int Window { get; }

        public static void Release(EncodedSection[] window)
        {
            foreach (var s in window)
            {
                if (s.Buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(s.Buffer);
                }
            }
        }

        /// <summary>Encodes sections [start, start + Window) into pooled buffers, in parallel.</summary>
        public EncodedSection[] EncodeWindow(int start)
        {
            var count = Math.Min(Window, SectionCount - start);
            var window = new EncodedSection[count];
            var clock = Stopwatch.StartNew();
            try
            {
                KvContainerSections.ForEach(count, _degree, i => window[i] = Encode(start + i));
            }
            catch
            {
                Release(window);
                throw;
            }

            Interlocked.Add(ref _encodeTicks, clock.Elapsed.Ticks);
            return window;
        }

        public KvContainerWriteResult Result()
        {
            var framing = (long)SectionCount * KvContainerFormat.FrameLength;
            return new KvContainerWriteResult
            {
                TotalBytes = HeaderBytes + framing + _payloadBytes,
                HeaderBytes = HeaderBytes,
                PayloadBytes = _payloadBytes,
                StatisticsBytes = _statisticsBytes,
                SectionFramingBytes = framing,
                EncodeTime = TimeSpan.FromTicks(Interlocked.Read(ref _encodeTicks)),
            };
        }

        private EncodedSection Encode(int index)
        {
            var shape = Header.SectionShape(index);
            var bound = _codec.MaxEncodedLength(shape);
            if (bound > Array.MaxLength)
            {
                throw new ArgumentException($"{KvContainerFormat.Describe(index, shape)} may encode to {bound} bytes, more than a section can hold.", nameof(index));
            }

            var buffer = ArrayPool<byte>.Shared.Rent((int)bound);
            try
            {
                var encoding = _codec.Encode(Source(index, shape), shape, buffer.AsSpan(0, (int)bound));
                Interlocked.Add(ref _payloadBytes, encoding.BytesWritten);
                Interlocked.Add(ref _statisticsBytes, encoding.StatisticsBytes);
                return new EncodedSection(buffer, encoding.BytesWritten, KvContainerFormat.SectionChecksum(buffer.AsSpan(0, encoding.BytesWritten), _headerChecksum));
            }
            catch
            {
                ArrayPool<byte>.Shared.Return(buffer);
                throw;
            }
        }

        private ReadOnlySpan<Half> Source(int index, in KvSectionShape shape)
        {
            var kv = 2 * Header.LayerCount;
            if (index >= kv)
            {
                return _hidden!.State(index - kv);
            }

            var stride = _entry.LayerStride;
            return (shape.Kind == KvSectionKind.Keys ? _entry.Keys : _entry.Values).Slice(shape.Layer * stride, stride);
        }
    }
}
