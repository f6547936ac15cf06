#pragma warning disable MEVD9001 // The provider services are the abstractions' own helpers for reading record definitions.
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

namespace KvFusion.SemanticKernel.VectorStores;

/// <summary>
/// A collection of a <see cref="ChunkVectorStore"/>: records of any class shape (attributes or a
/// <see cref="VectorStoreCollectionDefinition"/>), searched exactly in memory with SIMD dot products, persisted by the store.
/// </summary>
/// <typeparam name="TKey">The key type: string, Guid, int or long (object for dynamic collections).</typeparam>
/// <typeparam name="TRecord">The record type.</typeparam>
/// <remarks>
/// Scores follow the vector property's distance function: similarities (cosine, dot product) rank higher first,
/// distances (cosine distance, negative dot product, Euclidean) lower first. Thread-safe.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Named after the abstraction it implements, VectorStoreCollection.")]
public sealed class ChunkVectorStoreCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>
    where TKey : notnull
    where TRecord : class
{
    private readonly ChunkVectorStore _store;
    private readonly CollectionState _state;
    private readonly RecordCodec _codec;
    private readonly CollectionModel _model;
    private readonly VectorStoreCollectionMetadata _metadata;

    internal ChunkVectorStoreCollection(ChunkVectorStore store, CollectionState state, CollectionModel model)
    {
        _store = store;
        _state = state;
        _model = model;
        _codec = new RecordCodec(model, state.Name);
        if (typeof(TKey) != typeof(object) && typeof(TKey) != model.KeyProperty.Type)
        {
            throw new NotSupportedException(
                $"Collection '{state.Name}' was asked for {typeof(TKey).Name} keys, but its key property '{model.KeyProperty.ModelName}' is {model.KeyProperty.Type.Name}.");
        }
        _metadata = new VectorStoreCollectionMetadata
        {
            VectorStoreSystemName = ChunkVectorStore.SystemName,
            VectorStoreName = store.Name,
            CollectionName = state.Name,
        };
    }

    /// <inheritdoc />
    public override string Name => _state.Name;

    /// <inheritdoc />
    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(_store.CollectionExists(_state));
    }

    /// <inheritdoc />
    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _store.EnsureExists(_state);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _store.EnsureDeleted(_state);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        var storageKey = _codec.CheckedKey(key);
        var includeVectors = IncludeVectors(options?.IncludeVectors ?? false);
        cancellationToken.ThrowIfCancellationRequested();
        var stored = Read(() => _state.Records.GetValueOrDefault(storageKey));
        return Task.FromResult(stored is null ? null : _codec.Materialize<TRecord>(stored, includeVectors));
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<TRecord> GetAsync(IEnumerable<TKey> keys, RecordRetrievalOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var storageKeys = keys.Select(k => _codec.CheckedKey(k)).ToList();
        var includeVectors = IncludeVectors(options?.IncludeVectors ?? false);
        cancellationToken.ThrowIfCancellationRequested();
        var found = Read(() =>
        {
            var list = new List<StoredRecord>(storageKeys.Count);
            foreach (var key in storageKeys)
            {
                if (_state.Records.TryGetValue(key, out var stored))
                {
                    list.Add(stored);
                }
            }
            return list;
        });
        foreach (var stored in found)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return _codec.Materialize<TRecord>(stored, includeVectors);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top,
        FilteredRecordRetrievalOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(top);
        options ??= new FilteredRecordRetrievalOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, nameof(options.Skip));
        var includeVectors = IncludeVectors(options.IncludeVectors);
        var predicate = RecordFilterCompiler.Compile(filter, _model);
        var order = OrderOf(options);
        cancellationToken.ThrowIfCancellationRequested();

        var matches = Read(() =>
        {
            var list = new List<StoredRecord>();
            foreach (var stored in _state.Records.Values)
            {
                if (predicate(stored.Values))
                {
                    list.Add(stored);
                }
            }
            return list;
        });
        matches.Sort(order);
        var end = (int)Math.Min((long)options.Skip + top, matches.Count);
        for (var i = options.Skip; i < end; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return _codec.Materialize<TRecord>(matches[i], includeVectors);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default)
        => DeleteAsync([key], cancellationToken);

    /// <inheritdoc />
    public override Task DeleteAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var storageKeys = keys.Select(k => _codec.CheckedKey(k)).ToList();
        cancellationToken.ThrowIfCancellationRequested();
        Write(() =>
        {
            _store.Database?.Delete(_state.Name, storageKeys);
            foreach (var key in storageKeys)
            {
                _state.Records.Remove(key);
            }
        });
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return UpsertAsync([record], cancellationToken);
    }

    /// <inheritdoc />
    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is null)
            {
                throw new ArgumentException($"Record {i} of the batch is null.", nameof(records));
            }
        }
        if (list.Count == 0)
        {
            return;
        }

        // Embeddings are generated before taking the lock: generation is slow and may call a service.
        var generated = new float[]?[list.Count][];
        for (var r = 0; r < list.Count; r++)
        {
            generated[r] = new float[]?[_model.VectorProperties.Count];
        }
        for (var v = 0; v < _model.VectorProperties.Count; v++)
        {
            var property = _model.VectorProperties[v];
            if (ChunkCollectionModelBuilder.IsNativeVectorType(property.Type))
            {
                continue;
            }
            var embeddings = await property.GenerateEmbeddingsAsync(list.Select(r => property.GetValueAsObject(r)), cancellationToken)
                .ConfigureAwait(false);
            for (var r = 0; r < list.Count; r++)
            {
                generated[r][v] = embeddings[r] is Embedding<float> embedding
                    ? embedding.Vector.ToArray()
                    : throw new NotSupportedException(
                        $"The embedding generator of '{property.ModelName}' returned {embeddings[r].GetType().Name}; ChunkVectorStore needs Embedding<float>.");
            }
        }
        cancellationToken.ThrowIfCancellationRequested();

        var encoded = new StoredRecord[list.Count];
        for (var r = 0; r < list.Count; r++)
        {
            encoded[r] = _codec.Encode(list[r], generated[r]);
        }
        Write(() =>
        {
            _store.Database?.Put(_state.Name, encoded.Select(e => (e.StorageKey, e.Payload)).ToList());
            foreach (var stored in encoded)
            {
                _state.Records[stored.StorageKey] = stored;
            }
        });
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top,
        VectorSearchOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(top);
        options ??= new VectorSearchOptions<TRecord>();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Skip, nameof(options.Skip));
        var includeVectors = IncludeVectors(options.IncludeVectors);
        var vectorProperty = _model.GetVectorPropertyOrSingle(options);
        var vectorIndex = IndexOf(vectorProperty);
        var predicate = options.Filter is null ? null : RecordFilterCompiler.Compile(options.Filter, _model);
        var query = await QueryVectorAsync(searchValue, vectorProperty, cancellationToken).ConfigureAwait(false);
        if (query.Length != vectorProperty.Dimensions)
        {
            throw new ArgumentException(
                $"The search vector has {query.Length} dimensions; '{vectorProperty.ModelName}' of collection '{Name}' has {vectorProperty.Dimensions}.",
                nameof(searchValue));
        }
        cancellationToken.ThrowIfCancellationRequested();

        var scorer = new VectorScorer(vectorProperty.DistanceFunction);
        var threshold = options.ScoreThreshold;
        var keep = (int)Math.Min((long)top + options.Skip, int.MaxValue);
        var ranked = Read(() => Rank(query, vectorIndex, scorer, predicate, threshold, keep));
        for (var i = options.Skip; i < ranked.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (stored, score) = ranked[i];
            yield return new VectorSearchResult<TRecord>(_codec.Materialize<TRecord>(stored, includeVectors), score);
        }
    }

    /// <inheritdoc />
    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(VectorStoreCollectionMetadata))
        {
            return _metadata;
        }
        if (serviceType == typeof(ChunkVectorStore) || serviceType == typeof(VectorStore))
        {
            return _store;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>The best <paramref name="keep"/> matches, best first; a min-heap of that size keeps the work O(n log k).</summary>
    private List<(StoredRecord Record, float Score)> Rank(float[] query, int vectorIndex, VectorScorer scorer,
        Func<object?[], bool>? predicate, double? threshold, int keep)
    {
        var queryNorm = System.Numerics.Tensors.TensorPrimitives.Norm(query);
        var heap = new PriorityQueue<(StoredRecord Record, float Score), float>(Math.Min(keep, Math.Max(_state.Records.Count, 1)));
        foreach (var stored in _state.Records.Values)
        {
            var vector = stored.Vectors[vectorIndex];
            if (vector is null || (predicate is not null && !predicate(stored.Values)))
            {
                continue;
            }
            var score = scorer.Score(query, queryNorm, vector, stored.Norms[vectorIndex]);
            if (!scorer.Passes(score, threshold))
            {
                continue;
            }
            var rank = scorer.Rank(score);
            if (heap.Count < keep)
            {
                heap.Enqueue((stored, score), rank);
            }
            else if (heap.TryPeek(out _, out var worst) && rank > worst)
            {
                heap.DequeueEnqueue((stored, score), rank);
            }
        }
        var result = new List<(StoredRecord Record, float Score)>(heap.Count);
        while (heap.TryDequeue(out var item, out _))
        {
            result.Add(item);
        }
        result.Reverse();
        return result;
    }

    private async Task<float[]> QueryVectorAsync<TInput>(TInput searchValue, VectorPropertyModel vectorProperty, CancellationToken cancellationToken)
    {
        switch (searchValue)
        {
            case ReadOnlyMemory<float> memory:
                return memory.ToArray();
            case float[] array:
                return array;
            case Embedding<float> embedding:
                return embedding.Vector.ToArray();
        }
        if (vectorProperty.EmbeddingGenerator is IEmbeddingGenerator<TInput, Embedding<float>> generator)
        {
            var embedding = await generator.GenerateAsync(searchValue, cancellationToken: cancellationToken).ConfigureAwait(false);
            return embedding.Vector.ToArray();
        }
        if (vectorProperty.EmbeddingGenerator is not null)
        {
            throw new NotSupportedException(VectorDataStrings.IncompatibleEmbeddingGeneratorWasConfiguredForInputType(
                typeof(TInput), vectorProperty.EmbeddingGenerator.GetType()));
        }
        throw new NotSupportedException(
            $"Collection '{Name}' cannot search with a {typeof(TInput).Name}: it needs a vector ({ChunkCollectionModelBuilder.SupportedVectorTypes}), "
            + "or an IEmbeddingGenerator configured on ChunkVectorStoreOptions.EmbeddingGenerator, the collection definition or the vector property.");
    }

    private Comparison<StoredRecord> OrderOf(FilteredRecordRetrievalOptions<TRecord> options)
    {
        var sorts = options.OrderBy?.Invoke(new FilteredRecordRetrievalOptions<TRecord>.OrderByDefinition()).Values;
        if (sorts is null || sorts.Count == 0)
        {
            // No order asked: key order, so pages are stable.
            return static (a, b) => string.CompareOrdinal(a.StorageKey, b.StorageKey);
        }
        var keys = new (int Index, bool Ascending)[sorts.Count];
        for (var i = 0; i < sorts.Count; i++)
        {
            var property = _model.GetDataOrKeyProperty(sorts[i].PropertySelector);
            keys[i] = (IndexOf(property), sorts[i].Ascending);
        }
        return (a, b) =>
        {
            foreach (var (index, ascending) in keys)
            {
                var compared = Comparer<object?>.Default.Compare(a.Values[index], b.Values[index]);
                if (compared != 0)
                {
                    return ascending ? compared : -compared;
                }
            }
            return string.CompareOrdinal(a.StorageKey, b.StorageKey);
        };
    }

    private bool IncludeVectors(bool requested)
    {
        if (requested && _model.EmbeddingGenerationRequired)
        {
            throw new NotSupportedException(VectorDataStrings.IncludeVectorsNotSupportedWithEmbeddingGeneration);
        }
        return requested;
    }

    private int IndexOf(PropertyModel property)
    {
        if (property is VectorPropertyModel)
        {
            for (var i = 0; i < _model.VectorProperties.Count; i++)
            {
                if (ReferenceEquals(_model.VectorProperties[i], property))
                {
                    return i;
                }
            }
        }
        for (var i = 0; i < _model.Properties.Count; i++)
        {
            if (ReferenceEquals(_model.Properties[i], property))
            {
                return i;
            }
        }
        throw new InvalidOperationException($"Property '{property.ModelName}' is not in the model of collection '{Name}'.");
    }

    private T Read<T>(Func<T> read)
    {
        while (true)
        {
            _store.ThrowIfDisposed();
            _state.Lock.EnterReadLock();
            try
            {
                if (_state.Schema == _codec.Schema && _state.Undecoded is null)
                {
                    RequireExists();
                    return read();
                }
            }
            finally
            {
                _state.Lock.ExitReadLock();
            }
            Write(static () => { });
        }
    }

    private void Write(Action write)
    {
        _store.ThrowIfDisposed();
        _state.Lock.EnterWriteLock();
        try
        {
            if (_state.Schema != _codec.Schema || _state.Undecoded is not null)
            {
                Redecode();
            }
            RequireExists();
            write();
        }
        finally
        {
            _state.Lock.ExitWriteLock();
        }
    }

    /// <summary>Decodes the records with this view's model: loaded payloads on first use, or another view's records.</summary>
    private void Redecode()
    {
        var payloads = _state.Undecoded ?? _state.Records.ToDictionary(r => r.Key, r => r.Value.Payload, StringComparer.Ordinal);
        var decoded = new List<StoredRecord>(payloads.Count);
        foreach (var (key, payload) in payloads)
        {
            decoded.Add(_codec.Decode(key, payload));
        }
        _state.Records.Clear();
        foreach (var stored in decoded)
        {
            _state.Records[stored.StorageKey] = stored;
        }
        _state.Undecoded = null;
        _state.Schema = _codec.Schema;
    }

    private void RequireExists()
    {
        if (!_state.Exists)
        {
            throw new VectorStoreException($"Collection '{Name}' does not exist; call EnsureCollectionExistsAsync first.")
            {
                VectorStoreSystemName = ChunkVectorStore.SystemName,
                VectorStoreName = _store.Name,
                CollectionName = Name,
            };
        }
    }
}
