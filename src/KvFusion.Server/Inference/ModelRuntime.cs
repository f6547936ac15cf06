using System.Collections.Concurrent;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Logging;

namespace KvFusion.Server.Inference;

/// <summary>
/// The loaded model, the storage stack and the engines of the tenants seen so far. One compute backend serves all of
/// them through one queue (<see cref="FusionEngine.WithStore"/>).
/// </summary>
public sealed class ModelRuntime : IAsyncDisposable
{
    private readonly ComputeBackend _backend;
    private readonly FusionEngine _root;
    private readonly ConcurrentDictionary<string, TenantEngine> _tenants = new(StringComparer.Ordinal);
    private readonly ILoggerFactory _loggers;

    private ModelRuntime(ComputeBackend backend, TransformerModel model, KvStorage storage, ILoggerFactory loggers)
    {
        _backend = backend;
        Model = model;
        Storage = storage;
        _loggers = loggers;
        ModelId = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model.Directory)));
        LoadedAt = DateTimeOffset.UtcNow;
        _root = new FusionEngine(model, storage.CreateStore(model), logger: loggers.CreateLogger<FusionEngine>());
    }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>The model's id in the API: its folder name.</summary>
    public string ModelId { get; }

    /// <summary>When the model was loaded.</summary>
    public DateTimeOffset LoadedAt { get; }

    /// <summary>The storage tiers.</summary>
    public KvStorage Storage { get; }

    /// <summary>Loads the model on <paramref name="backend"/> (which the runtime then owns) and opens the tiers.</summary>
    public static async Task<ModelRuntime> OpenAsync(string modelDirectory, ComputeBackend backend, KvStorageOptions storageOptions, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(backend);
        TransformerModel? model = null;
        try
        {
            model = TransformerModel.Load(modelDirectory, backend);
            var storage = await KvStorage.OpenAsync(storageOptions, loggers, cancellationToken).ConfigureAwait(false);
            return new ModelRuntime(backend, model, storage, loggers);
        }
        catch
        {
            model?.Dispose();
            backend.Dispose();
            throw;
        }
    }

    /// <summary>The engine of <paramref name="tenant"/> (created on first use).</summary>
    public TenantEngine For(string tenant) => _tenants.GetOrAdd(tenant, t =>
    {
        var store = Storage.CreateStore(Model, t);
        return new TenantEngine(t, Storage.NamespaceOf(Model, t), store, _root.WithStore(store));
    });

    /// <summary>Finishes the computation in progress, drains queued writes to the lower tiers, and releases everything.</summary>
    public async ValueTask DisposeAsync()
    {
        await _root.DisposeAsync().ConfigureAwait(false);
        try
        {
            await Storage.FlushAsync().ConfigureAwait(false);
        }
        finally
        {
            await Storage.DisposeAsync().ConfigureAwait(false);
            Model.Dispose();
            _backend.Dispose();
            _loggers.CreateLogger<ModelRuntime>().LogInformation("Model {Model} released; write-behind queue drained", ModelId);
        }
    }
}
