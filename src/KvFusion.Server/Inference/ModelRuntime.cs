using System.Collections.Concurrent;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Logging;

namespace KvFusion.Server.Inference;

/// <summary>
/// One served model and the engines of the tenants seen so far. Its backend serves all of them through one queue
/// (<see cref="FusionEngine.WithStore"/>); the storage tiers belong to <see cref="ServedModels"/>, shared by every model.
/// </summary>
public sealed class ModelRuntime : IAsyncDisposable
{
    private readonly ComputeBackend _backend;
    private readonly FusionEngine _root;
    private readonly ConcurrentDictionary<string, TenantEngine> _tenants = new(StringComparer.Ordinal);
    private readonly ILoggerFactory _loggers;

    internal ModelRuntime(ComputeBackend backend, TransformerModel model, KvStorage storage, FusionEngineOptions engineOptions, ILoggerFactory loggers)
    {
        _backend = backend;
        Model = model;
        Storage = storage;
        _loggers = loggers;
        ModelId = IdOf(model);
        LoadedAt = DateTimeOffset.UtcNow;
        HiddenStateLayers = engineOptions.HiddenStateLayers;
        _root = new FusionEngine(model, storage.CreateStore(model), engineOptions with { CostModel = storage.CostModel }, loggers.CreateLogger<FusionEngine>());
    }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>The model's id in the API: its folder name.</summary>
    public string ModelId { get; }

    /// <summary>When the model was loaded.</summary>
    public DateTimeOffset LoadedAt { get; }

    /// <summary>The storage tiers (shared by every served model; each model's entries live in its own namespaces).</summary>
    public KvStorage Storage { get; }

    /// <summary>The layers whose entering hidden state (E-cache) this model stores with each chunk, for agents that share it.</summary>
    public IReadOnlyList<int> HiddenStateLayers { get; }

    /// <summary>The engine of <paramref name="tenant"/> (created on first use).</summary>
    public TenantEngine For(string tenant) => _tenants.GetOrAdd(tenant, t =>
    {
        var store = Storage.CreateStore(Model, t);
        return new TenantEngine(t, Storage.NamespaceOf(Model, t), store, _root.WithStore(store));
    });

    /// <summary>The id a model is served under: its folder name.</summary>
    internal static string IdOf(TransformerModel model) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model.Directory)));

    /// <summary>Finishes the computation in progress and releases the model and its backend (not the shared tiers).</summary>
    public async ValueTask DisposeAsync()
    {
        await _root.DisposeAsync().ConfigureAwait(false);
        Model.Dispose();
        _backend.Dispose();
        _loggers.CreateLogger<ModelRuntime>().LogInformation("Model {Model} released", ModelId);
    }
}
