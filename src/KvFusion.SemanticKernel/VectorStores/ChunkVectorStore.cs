#pragma warning disable MEVD9001 // The provider services are the abstractions' own helpers for reading record definitions.
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.VectorData;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// KvFusion's vector store: collections searched exactly in memory and, when opened on a directory, persisted in RocksDB
/// (every write goes to disk before it is visible; opening loads every record back).
/// </summary>
/// <remarks>Thread-safe. Dispose it to close the database.</remarks>
public sealed class ChunkVectorStore : VectorStore, IAsyncDisposable
{
    /// <summary>The <see cref="VectorStoreMetadata.VectorStoreSystemName"/> of this store.</summary>
    public const string SystemName = "kvfusion";

    /// <summary>The folder under a KvFusion store directory that holds the vectors.</summary>
    public const string DefaultFolderName = "vectors";

    private readonly ChunkVectorStoreOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<string, CollectionState> _collections = new(StringComparer.Ordinal);
    private readonly Lock _collectionsLock = new();
    private readonly VectorStoreMetadata _metadata;
    private int _disposed;

    private ChunkVectorStore(ChunkVectorStoreOptions options, VectorRecordDatabase? database)
    {
        _options = options;
        _logger = options.LoggerFactory?.CreateLogger<ChunkVectorStore>() ?? (ILogger)NullLogger.Instance;
        Database = database;
        Name = database?.Path ?? "in-memory";
        _metadata = new VectorStoreMetadata { VectorStoreSystemName = SystemName, VectorStoreName = Name };
    }

    /// <summary>The database directory, or "in-memory".</summary>
    public string Name { get; }

    /// <summary>The directory holding the RocksDB database; null for an in-memory store.</summary>
    public string? Directory => Database?.Path;

    internal VectorRecordDatabase? Database { get; }

    /// <summary>The vector folder of a KvFusion store directory: <c>Path.Combine(storeDirectory, "vectors")</c>.</summary>
    /// <param name="storeDirectory">The chunk store's directory (for example the CLI's <c>./data</c>).</param>
    public static string DefaultPathFor(string storeDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(storeDirectory);
        return Path.Combine(storeDirectory, DefaultFolderName);
    }

    /// <summary>A store that keeps its records in memory only.</summary>
    /// <param name="options">Settings; null for the defaults.</param>
    public static ChunkVectorStore InMemory(ChunkVectorStoreOptions? options = null)
        => new(options ?? new ChunkVectorStoreOptions(), null);

    /// <summary>Opens (or creates) a RocksDB-persisted store in <paramref name="directory"/> and loads its records.</summary>
    /// <param name="directory">The database directory, created when missing.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels loading.</param>
    /// <exception cref="IOException">RocksDB cannot open the directory (for example another process holds it).</exception>
    /// <exception cref="InvalidDataException">A stored record is corrupt; the message names its collection and key.</exception>
    public static Task<ChunkVectorStore> OpenAsync(string directory, ChunkVectorStoreOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        options ??= new ChunkVectorStoreOptions();
        return Task.Run(() =>
        {
            var database = VectorRecordDatabase.Open(Path.GetFullPath(directory), options.SyncWrites);
            var store = new ChunkVectorStore(options, database);
            try
            {
                store.Load(cancellationToken);
                return store;
            }
            catch
            {
                store.Dispose();
                throw;
            }
        }, cancellationToken);
    }

    /// <inheritdoc />
    public override ChunkVectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name,
        VectorStoreCollectionDefinition? definition = null)
    {
        ThrowIfDisposed();
        if (typeof(TRecord) == typeof(Dictionary<string, object?>))
        {
            throw new NotSupportedException(
                "Use GetDynamicCollection for Dictionary<string, object?> records; GetCollection needs a record class.");
        }
        var model = new ChunkCollectionModelBuilder().Build(typeof(TRecord), typeof(TKey), definition, _options.EmbeddingGenerator);
        return new ChunkVectorStoreCollection<TKey, TRecord>(this, StateOf(name), model);
    }

    /// <inheritdoc />
    public override ChunkVectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name,
        VectorStoreCollectionDefinition definition)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(definition);
        var model = new ChunkCollectionModelBuilder().BuildDynamic(definition, _options.EmbeddingGenerator);
        return new ChunkVectorStoreCollection<object, Dictionary<string, object?>>(this, StateOf(name), model);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<string> ListCollectionNamesAsync(
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        List<string> names;
        lock (_collectionsLock)
        {
            names = [];
            foreach (var state in _collections.Values)
            {
                if (CollectionExists(state))
                {
                    names.Add(state.Name);
                }
            }
        }
        names.Sort(StringComparer.Ordinal);
        foreach (var name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return name;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(CollectionExists(StateOf(name)));
    }

    /// <inheritdoc />
    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        EnsureDeleted(StateOf(name));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(VectorStoreMetadata))
        {
            return _metadata;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Closes the database.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (disposing)
        {
            lock (_collectionsLock)
            {
                foreach (var state in _collections.Values)
                {
                    // Taking each write lock waits out the operations in progress before the database closes.
                    state.Lock.EnterWriteLock();
                    state.Lock.ExitWriteLock();
                }
                Database?.Dispose();
                foreach (var state in _collections.Values)
                {
                    state.Dispose();
                }
            }
        }
        base.Dispose(disposing);
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    internal bool CollectionExists(CollectionState state)
    {
        ThrowIfDisposed();
        state.Lock.EnterReadLock();
        try
        {
            return state.Exists;
        }
        finally
        {
            state.Lock.ExitReadLock();
        }
    }

    internal void EnsureExists(CollectionState state)
    {
        ThrowIfDisposed();
        state.Lock.EnterWriteLock();
        try
        {
            if (!state.Exists)
            {
                Database?.CreateCollection(state.Name);
                state.Exists = true;
                _logger.LogDebug("Created vector collection {Collection} in {Store}", state.Name, Name);
            }
        }
        finally
        {
            state.Lock.ExitWriteLock();
        }
    }

    internal void EnsureDeleted(CollectionState state)
    {
        ThrowIfDisposed();
        state.Lock.EnterWriteLock();
        try
        {
            if (state.Exists || state.Records.Count > 0 || state.Undecoded is not null)
            {
                Database?.DeleteCollection(state.Name);
                state.Records.Clear();
                state.Undecoded = null;
                state.Exists = false;
                _logger.LogDebug("Deleted vector collection {Collection} in {Store}", state.Name, Name);
            }
        }
        finally
        {
            state.Lock.ExitWriteLock();
        }
    }

    private CollectionState StateOf(string name)
    {
        ValidateName(name);
        lock (_collectionsLock)
        {
            if (!_collections.TryGetValue(name, out var state))
            {
                state = new CollectionState(name);
                _collections[name] = state;
            }
            return state;
        }
    }

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Collection name '{name.Replace("\0", "\\0", StringComparison.Ordinal)}' contains a NUL character.", nameof(name));
        }
    }

    private void Load(CancellationToken cancellationToken)
    {
        var loaded = Database!.LoadAll(cancellationToken);
        var records = 0;
        foreach (var (name, payloads) in loaded)
        {
            foreach (var (key, payload) in payloads)
            {
                CheckPayload(name, key, payload);
            }
            var state = StateOf(name);
            state.Exists = true;
            // Records are decoded by the first collection view, which knows the record type.
            state.Undecoded = payloads;
            records += payloads.Count;
        }
        _logger.LogInformation("Opened vector store {Store}: {Collections} collections, {Records} records", Name, loaded.Count, records);
    }

    private static void CheckPayload(string collection, string key, byte[] payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("k", out var storedKey)
                || storedKey.GetString() != key || !root.TryGetProperty("d", out _) || !root.TryGetProperty("v", out _))
            {
                throw new InvalidDataException("its payload lacks the key, data or vectors, or names another key");
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"Vector store record '{key}' in collection '{collection}' is corrupt: {e.Message}", e);
        }
    }
}
