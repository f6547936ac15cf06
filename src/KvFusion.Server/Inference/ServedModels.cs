using KvFusion.Cache.Codecs;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Sharing;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;
using KvFusion.Engine.Transformer;
using KvFusion.Server.Errors;
using KvFusion.Server.Hosting;
using KvFusion.Storage.Hosting;
using Microsoft.Extensions.Logging;

namespace KvFusion.Server.Inference;

/// <summary>
/// The models the service serves (one, or fine-tuned agents of one family), the storage tiers they share and the
/// sharing profiles between them. Requests route by model id; each model's entries live in its own namespaces, so a
/// cache reaches another model only through the <c>share</c> path.
/// </summary>
public sealed class ServedModels : IAsyncDisposable
{
    private readonly Dictionary<string, ModelRuntime> _byId;
    private readonly IReadOnlyList<SharingProfile> _profiles;

    private ServedModels(IReadOnlyList<ModelRuntime> all, KvStorage storage, IReadOnlyList<SharingProfile> profiles)
    {
        All = all;
        Storage = storage;
        _profiles = profiles;
        _byId = all.ToDictionary(m => m.ModelId, StringComparer.Ordinal);
    }

    /// <summary>Every served model, the default first.</summary>
    public IReadOnlyList<ModelRuntime> All { get; }

    /// <summary>The model of requests that name none.</summary>
    public ModelRuntime Default => All[0];

    /// <summary>The storage tiers.</summary>
    public KvStorage Storage { get; }

    /// <summary>The model <paramref name="modelId"/> names (the default for null or empty).</summary>
    /// <exception cref="ApiProblemException">404 naming the served models.</exception>
    public ModelRuntime Find(string? modelId, string what = "model")
    {
        if (string.IsNullOrEmpty(modelId))
        {
            return Default;
        }

        return _byId.TryGetValue(modelId, out var runtime)
            ? runtime
            : throw ApiProblemException.NotFound(
                $"The {what} '{(modelId.Length <= 80 ? modelId : modelId[..80] + "…")}' is not served here; GET /v1/models lists {string.Join(", ", All.Select(m => $"'{m.ModelId}'"))}.");
    }

    /// <summary>The loaded sharing profile of <paramref name="sender"/> → <paramref name="receiver"/>, or null.</summary>
    public SharingProfile? ProfileFor(ModelRuntime sender, ModelRuntime receiver)
    {
        ArgumentNullException.ThrowIfNull(sender);
        ArgumentNullException.ThrowIfNull(receiver);
        foreach (var p in _profiles)
        {
            if (p.Sender == sender.Model.Fingerprint && p.Receiver == receiver.Model.Fingerprint)
            {
                return p;
            }
        }

        return null;
    }

    private static Dictionary<KvCodecSpec, double> CodecKlOf(LoadingControllerOptions loading)
    {
        var kl = new Dictionary<KvCodecSpec, double>();
        foreach (var (codec, value) in loading.CodecKl)
        {
            kl[KvCodecSpec.Parse(codec)] = value;
        }

        return kl;
    }

    /// <summary>
    /// Loads every model (each on a backend of its own from <paramref name="backends"/>), checks that they are one
    /// family and that each profile is for a served pair, and opens the tiers. Each model's engine starts from
    /// <paramref name="engineDefaults"/> (its scheduling and memory bound), with its own E-cache layers and calibration.
    /// </summary>
    /// <exception cref="ServedModelsException">Two models of different families, one id twice, or a profile for a pair not served (the message says which).</exception>
    public static async Task<ServedModels> OpenAsync(
        IReadOnlyList<string> modelDirectories,
        Func<ComputeBackend> backends,
        KvStorageOptions storageOptions,
        IReadOnlyList<string> profilePaths,
        string? qualityCalibrationPath,
        FusionEngineOptions engineDefaults,
        LoadingControllerOptions loading,
        ILoggerFactory loggers,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engineDefaults);
        ArgumentNullException.ThrowIfNull(loading);
        ArgumentNullException.ThrowIfNull(modelDirectories);
        ArgumentNullException.ThrowIfNull(backends);
        ArgumentNullException.ThrowIfNull(profilePaths);
        if (modelDirectories.Count == 0)
        {
            throw new ArgumentException("At least one model is served.", nameof(modelDirectories));
        }

        var loaded = new List<(ComputeBackend Backend, TransformerModel Model)>();
        var runtimes = new List<ModelRuntime>();
        KvStorage? storage = null;
        try
        {
            foreach (var directory in modelDirectories)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var backend = backends();
                try
                {
                    loaded.Add((backend, TransformerModel.Load(directory, backend)));
                }
                catch
                {
                    backend.Dispose();
                    throw;
                }
            }

            CheckFamily(loaded.Select(l => l.Model).ToList());
            var profiles = LoadProfiles(loaded.Select(l => l.Model).ToList(), profilePaths);
            var calibration = LoadCalibration(loaded.Select(l => l.Model).ToList(), qualityCalibrationPath);
            storage = await KvStorage.OpenAsync(storageOptions, loggers, cancellationToken).ConfigureAwait(false);
            foreach (var (backend, model) in loaded)
            {
                var options = engineDefaults with
                {
                    Loading = loading.Enabled ? storage.LoadingFor(CodecKlOf(loading)) : null,
                    HiddenStateLayers = HiddenStateLayersOf(model, loaded.Count, profiles),
                    QualityCalibration = calibration is { } c && c.Model == model ? c.Calibration : FusionEngineOptions.DefaultQualityCalibration,
                };
                runtimes.Add(new ModelRuntime(backend, model, storage, options, loggers));
            }

            return new ServedModels(runtimes, storage, profiles);
        }
        catch
        {
            foreach (var runtime in runtimes)
            {
                await runtime.DisposeAsync().ConfigureAwait(false);
            }

            foreach (var (backend, model) in loaded.Skip(runtimes.Count))
            {
                model.Dispose();
                backend.Dispose();
            }

            if (storage is not null)
            {
                await storage.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Releases every model, then drains the write-behind queue to the lower tiers and closes them.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            foreach (var runtime in All)
            {
                await runtime.DisposeAsync().ConfigureAwait(false);
            }

            await Storage.FlushAsync().ConfigureAwait(false);
        }
        finally
        {
            await Storage.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static void CheckFamily(List<TransformerModel> models)
    {
        var first = models[0];
        var ids = new HashSet<string>(StringComparer.Ordinal) { ModelRuntime.IdOf(first) };
        for (var i = 1; i < models.Count; i++)
        {
            var m = models[i];
            if (!ids.Add(ModelRuntime.IdOf(m)))
            {
                throw new ServedModelsException($"Two served models have the id '{ModelRuntime.IdOf(m)}' (their folder name); rename one folder.");
            }

            var check = ModelCompatibility.Check(first.Config, first.Fingerprint, m.Config, m.Fingerprint);
            if (!check.IsCompatible)
            {
                throw new ServedModelsException(
                    $"The agent '{ModelRuntime.IdOf(m)}' is not of the family of '{ModelRuntime.IdOf(first)}': {check.Reason}. One service serves fine-tuned agents of one base model.");
            }
        }
    }

    private static List<SharingProfile> LoadProfiles(List<TransformerModel> models, IReadOnlyList<string> paths)
    {
        var profiles = new List<SharingProfile>(paths.Count);
        foreach (var path in paths)
        {
            var profile = SharingProfile.Load(path);
            var sender = models.FirstOrDefault(m => m.Fingerprint == profile.Sender);
            var receiver = models.FirstOrDefault(m => m.Fingerprint == profile.Receiver);
            if (sender is null || receiver is null)
            {
                throw new ServedModelsException(
                    $"The sharing profile {Path.GetFileName(path)} is for {profile.SenderName} → {profile.ReceiverName}, and this service does not serve "
                    + (sender is null ? $"that sender ({profile.Sender.Model[..12]}…)" : $"that receiver ({profile.Receiver.Model[..12]}…)")
                    + ": profile the served pair with kvfusion profile sharing.");
            }

            profiles.Add(profile);
        }

        return profiles;
    }

    /// <summary>The quality calibration file's fit and the served model it was fitted on; null without a file.</summary>
    private static (TransformerModel Model, QualityCalibration Calibration)? LoadCalibration(IReadOnlyList<TransformerModel> models, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        FusionException? last = null;
        foreach (var model in models)
        {
            try
            {
                return (model, QualityCalibrationFile.Load(path, model.Fingerprint));
            }
            catch (FusionException e)
            {
                // Fitted on another served model, perhaps: try the next one; the last reason is the one reported.
                last = e;
            }
        }

        throw new ServedModelsException($"KvFusion:Quality:Calibration: {last!.Message}");
    }

    /// <summary>
    /// Where a model stores the E-cache: where the default blend starts chunk tokens
    /// (<see cref="FusionEngineOptions.DefaultHiddenStateLayers"/>), and, for agents, where its profiles start
    /// recomputing when it has any as a sender, else at every layer but 0 (which starts from the receiver's own
    /// embeddings).
    /// </summary>
    private static List<int> HiddenStateLayersOf(TransformerModel model, int servedModels, IReadOnlyList<SharingProfile> profiles)
    {
        var layers = new SortedSet<int>(FusionEngineOptions.DefaultHiddenStateLayers.Where(l => l < model.Config.LayerCount));
        if (servedModels == 1)
        {
            return [.. layers];
        }

        var own = profiles.Where(p => p.Sender == model.Fingerprint).ToList();
        if (own.Count == 0)
        {
            return [.. Enumerable.Range(1, model.Config.LayerCount - 1)];
        }

        foreach (var p in own)
        {
            layers.UnionWith(p.Recompute.HiddenStateLayers);
        }

        return [.. layers];
    }
}
