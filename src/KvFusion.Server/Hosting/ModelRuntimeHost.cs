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
/// Loads the models and opens the tiers before the server takes requests, and on shutdown (after in-flight requests
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
    private ServedModels? _models;

    /// <summary>The served models, once started.</summary>
    /// <exception cref="ApiProblemException">503 before the models are loaded or after shutdown began.</exception>
    public ServedModels Models => Volatile.Read(ref _models)
        ?? throw new ApiProblemException(503, "Not ready", "The model is not loaded yet.", "not_ready") { RetryAfter = TimeSpan.FromSeconds(2) };

    /// <summary>The default model's runtime, once started.</summary>
    /// <exception cref="ApiProblemException">503 before the models are loaded or after shutdown began.</exception>
    public ModelRuntime Runtime => Models.Default;

    /// <summary>The default model's runtime, or null before start.</summary>
    public ModelRuntime? TryGetRuntime() => Volatile.Read(ref _models)?.Default;

    /// <summary>The served models, or null before start.</summary>
    public ServedModels? TryGetModels() => Volatile.Read(ref _models);

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var directories = new List<string>();
        foreach (var model in new[] { options.Value.Model }.Concat(options.Value.Agents))
        {
            var directory = ModelSource.IsHubReference(model)
                ? await ModelSource.ResolveAsync(model!, ModelDownloadOptions.FromEnvironment(), null, loggers.CreateLogger("KvFusion.Hub"), null, cancellationToken).ConfigureAwait(false)
                : ModelDirectory.Resolve(model);
            scrubber.Add(directory);
            directories.Add(directory);
        }

        scrubber.Add(storage.Value.RocksDb.Path);
        scrubber.Add(AppContext.BaseDirectory);
        scrubber.Add(Environment.CurrentDirectory);
        foreach (var profile in options.Value.Sharing.Profiles)
        {
            scrubber.Add(Path.GetDirectoryName(Path.GetFullPath(profile)));
        }

        var models = await ServedModels.OpenAsync(directories, () => backends(), storage.Value, options.Value.Sharing.Profiles, options.Value.Quality.Calibration, options.Value.Queue.EngineOptions(), options.Value.Loading, loggers, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _models, models);
        foreach (var runtime in models.All)
        {
            _logger.LogInformation("Model {Model} loaded ({Layers} layers, context {Context}, E-cache at {HiddenStateLayers} layers); storage tiers: {Tiers}, tenant namespaces per API key",
                runtime.ModelId, runtime.Model.Config.LayerCount, runtime.Model.Config.MaxPositionEmbeddings, runtime.HiddenStateLayers.Count, storage.Value.Tiers);
        }
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _models, null) is { } models)
        {
            _logger.LogInformation("Stopping: draining the write-behind queue of {Models}", string.Join(", ", models.All.Select(m => m.ModelId)));
            await models.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
