using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Hub;
using KvFusion.Server.Errors;
using KvFusion.Server.Inference;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Hosting;

/// <summary>Creates the compute backend the model runs on (the CLI passes its <c>--device</c> choice).</summary>
public delegate ComputeBackend ComputeBackendFactory();

/// <summary>
/// Loads the model and opens the tiers before the server takes requests, and on shutdown (after in-flight requests
/// have finished) drains the write-behind queue to the lower tiers and releases them.
/// </summary>
public sealed class ModelRuntimeHost(
    IOptions<KvFusionServerOptions> options,
    IOptions<KvStorageOptions> storage,
    ComputeBackendFactory backends,
    PathScrubber scrubber,
    ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger<ModelRuntimeHost>();
    private ModelRuntime? _runtime;

    /// <summary>The runtime, once started.</summary>
    /// <exception cref="ApiProblemException">503 before the model is loaded or after shutdown began.</exception>
    public ModelRuntime Runtime => Volatile.Read(ref _runtime)
        ?? throw new ApiProblemException(503, "Not ready", "The model is not loaded yet.", "not_ready") { RetryAfter = TimeSpan.FromSeconds(2) };

    /// <summary>The runtime, or null before start.</summary>
    public ModelRuntime? TryGetRuntime() => Volatile.Read(ref _runtime);

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var model = options.Value.Model;
        var directory = ModelSource.IsHubReference(model)
            ? await ModelSource.ResolveAsync(model!, ModelDownloadOptions.FromEnvironment(), null, loggers.CreateLogger("KvFusion.Hub"), null, cancellationToken).ConfigureAwait(false)
            : ModelDirectory.Resolve(model);
        scrubber.Add(directory);
        scrubber.Add(storage.Value.RocksDb.Path);
        scrubber.Add(AppContext.BaseDirectory);
        scrubber.Add(Environment.CurrentDirectory);
        var runtime = await ModelRuntime.OpenAsync(directory, backends(), storage.Value, loggers, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _runtime, runtime);
        _logger.LogInformation("Model {Model} loaded ({Layers} layers, context {Context}); storage tiers: {Tiers}, tenant namespaces per API key",
            runtime.ModelId, runtime.Model.Config.LayerCount, runtime.Model.Config.MaxPositionEmbeddings, storage.Value.Tiers);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _runtime, null) is { } runtime)
        {
            _logger.LogInformation("Stopping: draining the write-behind queue of {Model}", runtime.ModelId);
            await runtime.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
