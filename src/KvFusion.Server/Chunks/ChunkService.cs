using System.Collections.Concurrent;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;
using KvFusion.Client.Contracts;
using KvFusion.Server.Errors;
using KvFusion.Server.Inference;

namespace KvFusion.Server.Chunks;

/// <summary>
/// Chunks of one tenant: precompute, metadata, download in any codec, verified upload, delete, pin. Every key is built
/// from the tenant's namespace and a parsed id, so an unknown id and another tenant's id take the same path and get
/// the same answer.
/// </summary>
public sealed class ChunkService(ChunkPins pins)
{
    /// <summary>Parses a chunk id from a URL or body; 400 otherwise.</summary>
    public static ChunkId ParseId(string? text, string what = "chunk id") =>
        ChunkId.TryParse(text, out var id)
            ? id
            : throw ApiProblemException.BadRequest($"'{Truncate(text)}' is not a {what}: expected {ChunkId.HexLength} hex digits.");

    /// <summary>Precomputes (or finds) each chunk and describes it.</summary>
    public async Task<CreateChunksResponse> CreateAsync(ModelRuntime runtime, TenantEngine tenant, CreateChunksRequest request, int maxChunks, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Chunks is not { Count: > 0 })
        {
            throw ApiProblemException.BadRequest("chunks must hold at least one {\"text\": ...} or {\"tokens\": [...]}.");
        }

        if (request.Chunks.Count > maxChunks)
        {
            throw ApiProblemException.BadRequest($"chunks holds {request.Chunks.Count} chunks; at most {maxChunks} are accepted in one request.");
        }

        if (request.PinSeconds is < 1)
        {
            throw ApiProblemException.BadRequest("pin_seconds must be at least 1.");
        }

        var inputs = new ChunkInput[request.Chunks.Count];
        for (var i = 0; i < inputs.Length; i++)
        {
            inputs[i] = ToInput(request.Chunks[i], i);
        }

        var infos = new ChunkInfo[inputs.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            infos[i] = await PutAsync(runtime, tenant, inputs[i], request.PinSeconds, ct).ConfigureAwait(false);
        }

        return new CreateChunksResponse { Chunks = infos };
    }

    /// <summary>Precomputes one chunk (waiting for a computation of the same chunk already running) and describes it.</summary>
    public async Task<ChunkInfo> PutAsync(ModelRuntime runtime, TenantEngine tenant, ChunkInput input, int? pinSeconds, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tenant);
        var id = tenant.Engine.ChunkIdOf(input.Tokens is { } t ? [.. t] : tenant.Engine.Tokenize(input.Text!));
        var key = tenant.Engine.ChunkKeyOf(id);
        var existed = await tenant.Blobs.ContainsAsync(key, ct).ConfigureAwait(false);
        await tenant.Engine.PutChunkAsync(input, cancellationToken: ct).ConfigureAwait(false);
        if (pinSeconds is { } seconds)
        {
            await PinAsync(runtime, tenant, id, TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
        }

        return await DescribeAsync(runtime, tenant, id, ct).ConfigureAwait(false) with { Created = !existed };
    }

    /// <summary>The chunk's metadata; 404 when the tenant has no such chunk.</summary>
    public async Task<ChunkInfo> DescribeAsync(ModelRuntime runtime, TenantEngine tenant, ChunkId id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tenant);
        var blob = await GetBlobAsync(tenant, id, ct).ConfigureAwait(false);
        var header = KvContainerReader.ReadHeader(blob.Span);
        return new ChunkInfo
        {
            Id = id.ToString(),
            Tokens = header.TokenCount,
            Bytes = blob.Length,
            Codec = header.Codec.ToString(),
            Model = runtime.ModelId,
            PinnedUntil = pins.PinnedUntil(new TierKey(tenant.Namespace, tenant.Engine.ChunkKeyOf(id))),
        };
    }

    /// <summary>The stored container, re-encoded when <paramref name="codec"/> names another codec.</summary>
    public static async Task<(ReadOnlyMemory<byte> Blob, KvCodecSpec Codec)> ReadAsync(TenantEngine tenant, ChunkId id, string? codec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        KvCodecSpec? wanted = null;
        if (!string.IsNullOrEmpty(codec))
        {
            wanted = KvCodecSpec.TryParse(codec, out var spec, out var error)
                ? spec
                : throw ApiProblemException.BadRequest($"codec '{Truncate(codec)}' is not a codec: {error}");
        }

        var blob = await GetBlobAsync(tenant, id, ct).ConfigureAwait(false);
        var header = KvContainerReader.ReadHeader(blob.Span);
        if (wanted is not { } target || target == header.Codec)
        {
            return (blob, header.Codec);
        }

        var entry = KvContainerReader.Read(blob, KvContainerExpectation.FromModel(tenant.Engine.Model), new KvContainerReadOptions { Profiles = tenant.Store.Options.Profiles });
        var encoded = KvContainerWriter.ToArray(entry, target, new KvContainerWriteOptions { Profiles = tenant.Store.Options.Profiles });
        return (encoded, target);
    }

    /// <summary>
    /// Stores a container computed elsewhere under <paramref name="id"/> after checking everything: checksums, that
    /// every section decodes, the model and tokenizer fingerprints and shapes, that it is a chunk of the variant this
    /// service fuses, and that its token ids hash to the id. Nothing is stored when any check fails (422).
    /// </summary>
    public async Task<ChunkInfo> UploadAsync(ModelRuntime runtime, TenantEngine tenant, ChunkId id, byte[] blob, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(blob);
        if (blob.Length == 0)
        {
            throw ApiProblemException.BadRequest("The request has no body; send the KV container as application/octet-stream.");
        }

        var expectedKey = tenant.Engine.ChunkKeyOf(id);
        KvContainerHeader header;
        try
        {
            header = KvContainerReader.Verify(blob);
            KvContainerReader.Read(blob, KvContainerExpectation.FromModel(runtime.Model), new KvContainerReadOptions { Profiles = tenant.Store.Options.Profiles });
        }
        catch (KvContainerException e)
        {
            throw ApiProblemException.Unprocessable($"The KV container was refused ({e.Error}): {e.Message} Nothing was stored.");
        }
        catch (KvCodecException e)
        {
            throw ApiProblemException.Unprocessable($"The KV container was refused: {e.Message} Nothing was stored.");
        }

        if (header.Key.Kind != CacheEntryKind.Chunk || header.Key.Id != expectedKey.Id)
        {
            throw ApiProblemException.Unprocessable($"The container holds {header.Key}, not chunk {id}. Nothing was stored.");
        }

        if (header.Key.Variant != expectedKey.Variant)
        {
            throw ApiProblemException.Unprocessable($"The container was precomputed as variant '{header.Key.Variant}'; this service fuses '{expectedKey.Variant}'. Nothing was stored.");
        }

        if (header.TokenIds is not { } tokens)
        {
            throw ApiProblemException.Unprocessable("The container does not carry its token ids, so its id cannot be checked. Nothing was stored.");
        }

        if (tenant.Engine.ChunkIdOf([.. tokens]) != id)
        {
            throw ApiProblemException.Unprocessable($"The container's token ids do not hash to {id} under this model. Nothing was stored.");
        }

        var existed = await tenant.Blobs.ContainsAsync(expectedKey, ct).ConfigureAwait(false);
        if (!existed)
        {
            await tenant.Blobs.PutAsync(expectedKey, blob, ct).ConfigureAwait(false);
        }

        return await DescribeAsync(runtime, tenant, id, ct).ConfigureAwait(false) with { Created = !existed };
    }

    /// <summary>Removes the chunk from every tier; false when the tenant had no such chunk.</summary>
    public async Task<bool> DeleteAsync(TenantEngine tenant, ChunkId id, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var key = tenant.Engine.ChunkKeyOf(id);
        pins.Unpin(new TierKey(tenant.Namespace, key));
        return await tenant.Blobs.RemoveAsync(key, ct).ConfigureAwait(false);
    }

    /// <summary>Pins the chunk in host memory for <paramref name="duration"/> (loading it there first); 404 when unknown.</summary>
    public async Task<ChunkInfo> PinAsync(ModelRuntime runtime, TenantEngine tenant, ChunkId id, TimeSpan duration, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(tenant);
        await GetBlobAsync(tenant, id, ct).ConfigureAwait(false);
        var key = new TierKey(tenant.Namespace, tenant.Engine.ChunkKeyOf(id));
        if (!pins.Pin(runtime.Storage.Manager.Memory, key, duration))
        {
            throw new ApiProblemException(507, "Insufficient storage", "The chunk cannot be pinned: it does not fit in host memory next to the entries pinned there.", "memory_full");
        }

        return await DescribeAsync(runtime, tenant, id, ct).ConfigureAwait(false);
    }

    /// <summary>Releases the pin; false when the chunk was not pinned.</summary>
    public bool Unpin(TenantEngine tenant, ChunkId id)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        return pins.Unpin(new TierKey(tenant.Namespace, tenant.Engine.ChunkKeyOf(id)));
    }

    private static async Task<ReadOnlyMemory<byte>> GetBlobAsync(TenantEngine tenant, ChunkId id, CancellationToken ct) =>
        await tenant.Blobs.GetAsync(tenant.Engine.ChunkKeyOf(id), ct).ConfigureAwait(false) ?? throw UnknownChunk(id);

    /// <summary>The one answer for a chunk the caller cannot see, whoever else may hold it.</summary>
    public static ApiProblemException UnknownChunk(ChunkId id) => ApiProblemException.NotFound($"Chunk {id} is not stored.");

    private static ChunkInput ToInput(ChunkSource? source, int index)
    {
        if (source is null)
        {
            throw ApiProblemException.BadRequest($"chunks[{index}] is null.");
        }

        if ((source.Text is null) == (source.Tokens is null))
        {
            throw ApiProblemException.BadRequest($"chunks[{index}] needs exactly one of text or tokens.");
        }

        if (source.Text is { Length: 0 } || source.Tokens is { Count: 0 })
        {
            throw ApiProblemException.BadRequest($"chunks[{index}] is empty.");
        }

        return source.Text is { } text ? ChunkInput.FromText(text) : ChunkInput.FromTokens(source.Tokens!);
    }

    private static string Truncate(string? text) => text is null ? "" : text.Length <= 80 ? text : text[..80] + "…";
}

/// <summary>Pins held by the service, so they can be listed, replaced and released by id.</summary>
public sealed class ChunkPins : IDisposable
{
    private readonly ConcurrentDictionary<TierKey, KvPinLease> _leases = new();

    /// <summary>Pins <paramref name="key"/> (replacing an earlier pin); false when memory cannot hold it.</summary>
    public bool Pin(HostMemoryTier memory, TierKey key, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(memory);
        var lease = memory.Pin(key, duration);
        if (lease is null)
        {
            return false;
        }

        if (_leases.TryGetValue(key, out var old) && _leases.TryUpdate(key, lease, old))
        {
            old.Dispose();
        }
        else
        {
            _leases[key] = lease;
        }

        return true;
    }

    /// <summary>Until when <paramref name="key"/> is pinned, or null.</summary>
    public DateTimeOffset? PinnedUntil(TierKey key) =>
        _leases.TryGetValue(key, out var lease) && !lease.IsReleased && lease.ExpiresAt > DateTimeOffset.UtcNow ? lease.ExpiresAt : null;

    /// <summary>Releases the pin of <paramref name="key"/>; false when there was none.</summary>
    public bool Unpin(TierKey key)
    {
        if (_leases.TryRemove(key, out var lease))
        {
            var live = !lease.IsReleased && lease.ExpiresAt > DateTimeOffset.UtcNow;
            lease.Dispose();
            return live;
        }

        return false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var lease in _leases.Values)
        {
            lease.Dispose();
        }

        _leases.Clear();
    }
}
