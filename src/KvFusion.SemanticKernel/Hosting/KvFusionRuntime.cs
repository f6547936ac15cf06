using KvFusion.Cache.Fusion;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvFusion.SemanticKernel.Hosting;

/// <summary>
/// What the in-process chat client runs on: the CPU backend, the loaded model, the store of chunk caches and the fusion
/// engine over them. One per registration; disposing it drains the store's writes to disk and frees the backend.
/// </summary>
public sealed class KvFusionRuntime : IAsyncDisposable, IDisposable
{
    private int _disposed;

    private KvFusionRuntime(KvFusionOptions options, ComputeBackend backend, TransformerModel model, KvStorage storage, FusionEngine engine)
    {
        Options = options;
        Backend = backend;
        Model = model;
        Storage = storage;
        Engine = engine;
    }

    /// <summary>The settings it was opened with.</summary>
    public KvFusionOptions Options { get; }

    /// <summary>The compute backend.</summary>
    public ComputeBackend Backend { get; }

    /// <summary>The model.</summary>
    public TransformerModel Model { get; }

    /// <summary>The storage tiers.</summary>
    public KvStorage Storage { get; }

    /// <summary>The fusion engine over the model and the model's namespace of the store.</summary>
    public FusionEngine Engine { get; }

    /// <summary>Loads the model and opens the store <paramref name="options"/> name.</summary>
    /// <exception cref="OptionsValidationException">A setting is invalid; the message names each one.</exception>
    public static async Task<KvFusionRuntime> OpenAsync(KvFusionOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new KvFusionOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(KvFusionOptions.SectionName, typeof(KvFusionOptions), result.Failures);
        }

        var loggers = loggerFactory ?? NullLoggerFactory.Instance;
        var directory = ModelDirectory.Resolve(options.Model);
        var backend = new CpuBackend(options.Threads);
        TransformerModel? model = null;
        try
        {
            model = TransformerModel.Load(directory, backend);
            var storage = await KvStorage.OpenAsync(options.Storage, loggers, cancellationToken).ConfigureAwait(false);
            var engine = new FusionEngine(model, storage.CreateStore(model, options.Storage.Tenant), logger: loggers.CreateLogger<FusionEngine>());
            loggers.CreateLogger<KvFusionRuntime>().LogInformation("KvFusion runtime on {Model} ({Tiers}, tenant {Tenant})", directory, options.Storage.Tiers, options.Storage.Tenant);
            return new KvFusionRuntime(options, backend, model, storage, engine);
        }
        catch
        {
            model?.Dispose();
            backend.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the computation in progress, drains the store's writes, and frees the model and backend.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Engine.DisposeAsync().ConfigureAwait(false);
        await Storage.DisposeAsync().ConfigureAwait(false);
        Model.Dispose();
        Backend.Dispose();
    }

    /// <summary>Blocking form of <see cref="DisposeAsync"/>, for containers disposed synchronously.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
