using System.Buffers;
using System.Diagnostics;
using KvFusion.Cache.Chunks;
using KvFusion.Cache.Container;
using KvFusion.Cache.Keys;
using KvFusion.Engine.Transformer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Cache.Storage;

/// <summary>
/// An <see cref="IKvStore"/> over serialized blobs: each entry is encoded into a KV container with the configured
/// codec on put and decoded on get, checked against the model it must belong to. A blob that does not decode
/// (truncated, corrupt, of another model or shape, stored under another key) is a miss: it is logged, counted in
/// <see cref="CorruptBlobsDropped"/> and removed from the blob store, and never reaches the model.
/// </summary>
public sealed class ContainerKvStore : IKvStore
{
    private readonly KvContainerExpectation _expected;
    private readonly KvContainerWriteOptions _writeOptions;
    private readonly KvContainerReadOptions _readOptions;
    private readonly ILogger _logger;
    private long _corruptDropped;
    private long _undecodableKept;
    private long _entriesWritten;
    private long _bytesWritten;
    private long _fp16BytesWritten;

    /// <summary>Creates a store over <paramref name="blobs"/> for entries that match <paramref name="expected"/>.</summary>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public ContainerKvStore(IKvBlobStore blobs, KvContainerExpectation expected, ContainerKvStoreOptions? options = null, ILogger<ContainerKvStore>? logger = null)
    {
        Blobs = blobs ?? throw new ArgumentNullException(nameof(blobs));
        _expected = expected ?? throw new ArgumentNullException(nameof(expected));
        Options = options ?? new ContainerKvStoreOptions();
        Options.Validate();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _writeOptions = KvContainerWriteOptions.Default with { IncludeTokenIds = Options.IncludeTokenIds, MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism, Profiles = Options.Profiles };
        _readOptions = KvContainerReadOptions.Default with { Limits = Options.Limits, MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism, Profiles = Options.Profiles };
    }

    /// <summary>A store for <paramref name="model"/>'s entries (its fingerprints and KV shape).</summary>
    public static ContainerKvStore ForModel(TransformerModel model, IKvBlobStore blobs, ContainerKvStoreOptions? options = null, ILogger<ContainerKvStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ContainerKvStore(blobs, KvContainerExpectation.FromModel(model), options, logger);
    }

    /// <summary>The blob store underneath.</summary>
    public IKvBlobStore Blobs { get; }

    /// <summary>The settings.</summary>
    public ContainerKvStoreOptions Options { get; }

    /// <summary>Blobs that failed to decode or check, each counted as a miss and removed from <see cref="Blobs"/>.</summary>
    public long CorruptBlobsDropped => Interlocked.Read(ref _corruptDropped);

    /// <summary>Reads that found a blob this reader cannot decode (a profile it was not given, a newer codec or
    /// format) and kept it, counting a miss.</summary>
    public long UndecodableBlobsKept => Interlocked.Read(ref _undecodableKept);

    /// <summary>Entries encoded by <see cref="PutAsync"/>.</summary>
    public long EntriesWritten => Interlocked.Read(ref _entriesWritten);

    /// <summary>Container bytes written by <see cref="PutAsync"/>.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>The fp16 size of the K and V those containers hold (for the ratio to fp16).</summary>
    public long Fp16BytesWritten => Interlocked.Read(ref _fp16BytesWritten);

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">The configured codec is not built yet.</exception>
    public async ValueTask<CachedKv?> GetAsync(CacheKey key, CancellationToken cancellationToken = default)
    {
        ReadOnlyMemory<byte>? blob;
        try
        {
            blob = await Blobs.GetAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (KvBlobException e)
        {
            return await DropAsync(key, e.Message, e, cancellationToken).ConfigureAwait(false);
        }

        if (blob is not { } bytes)
        {
            return null;
        }

        CachedKv entry;
        try
        {
            var started = Stopwatch.GetTimestamp();
            entry = KvContainerReader.Read(bytes, _expected, _readOptions);
            if (Options.CostModel is { } costs)
            {
                var codec = KvContainerReader.ReadHeader(bytes.Span, _readOptions).Codec;
                costs.ObserveDecode(codec, entry.ByteSize, Stopwatch.GetElapsedTime(started));
                costs.ObserveStoredSize(codec, entry.ByteSize, bytes.Length);
            }
        }
        catch (KvContainerException e) when (e.Error is KvContainerError.MissingProfile or KvContainerError.UnknownCodec or KvContainerError.UnsupportedVersion)
        {
            // The blob may be fine: this reader lacks the profile, codec or format version it needs. Keep it for a
            // reader that has them; here it is a miss.
            Interlocked.Increment(ref _undecodableKept);
            _logger.LogWarning(e, "Kept the stored KV blob of {Key}, which this reader cannot decode: {Reason}", key, e.Message);
            return null;
        }
        catch (KvContainerException e)
        {
            return await DropAsync(key, e.Message, e, cancellationToken).ConfigureAwait(false);
        }

        // A valid container under the wrong key (a renamed file, a mixed-up tier) would hand out another text's KV.
        return entry.Key == key
            ? entry
            : await DropAsync(key, $"the container holds {entry.Key}", null, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The entry belongs to another model or has another KV shape.</exception>
    /// <exception cref="NotSupportedException">The configured codec is not built yet.</exception>
    public async ValueTask PutAsync(CachedKv entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.ModelFingerprint != _expected.ModelFingerprint || entry.TokenizerFingerprint != _expected.TokenizerFingerprint
            || entry.LayerCount != _expected.LayerCount || entry.KvHeads != _expected.KvHeads || entry.HeadDim != _expected.HeadDim)
        {
            throw new ArgumentException($"Entry {entry.Key} was computed by another model or has another KV shape than this store holds.", nameof(entry));
        }

        var buffer = new ArrayBufferWriter<byte>();
        var written = KvContainerWriter.Write(buffer, entry, Options.Codec, _writeOptions);
        await Blobs.PutAsync(entry.Key, buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _entriesWritten);
        Interlocked.Add(ref _bytesWritten, written.TotalBytes);
        Interlocked.Add(ref _fp16BytesWritten, entry.ByteSize);
        Options.CostModel?.ObserveStoredSize(Options.Codec, entry.ByteSize, written.TotalBytes);
    }

    /// <inheritdoc />
    public ValueTask<bool> RemoveAsync(CacheKey key, CancellationToken cancellationToken = default) => Blobs.RemoveAsync(key, cancellationToken);

    /// <inheritdoc />
    public ValueTask<bool> ContainsAsync(CacheKey key, CancellationToken cancellationToken = default) => Blobs.ContainsAsync(key, cancellationToken);

    private async ValueTask<CachedKv?> DropAsync(CacheKey key, string reason, Exception? error, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _corruptDropped);
        _logger.LogWarning(error, "Dropped the stored KV blob of {Key}, which cannot be used: {Reason}", key, reason);
        await Blobs.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
        return null;
    }
}
