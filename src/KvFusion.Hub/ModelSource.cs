using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Hub;

/// <summary>Turns a <c>--model</c> value into a local model directory: a path as is, a hub reference downloaded.</summary>
public static class ModelSource
{
    /// <summary>Whether <paramref name="model"/> is a hub reference (starts with <c>hf:</c>).</summary>
    public static bool IsHubReference(string? model) =>
        model is not null && model.StartsWith(HubModelReference.Prefix, StringComparison.Ordinal);

    /// <summary>
    /// The local directory for <paramref name="model"/>: a plain path is returned unchanged; <c>hf:OWNER/NAME[@REVISION]</c>
    /// is resolved from the cache or downloaded into it.
    /// </summary>
    /// <exception cref="ModelDownloadException">The reference is invalid or the model cannot be had; the message says what to do.</exception>
    public static Task<string> ResolveAsync(string model, ModelDownloadOptions options, IProgress<ModelDownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(model, options, null, null, progress, cancellationToken);

    /// <summary>Like <see cref="ResolveAsync(string, ModelDownloadOptions, IProgress{ModelDownloadProgress}?, CancellationToken)"/> with a given HTTP client and logger.</summary>
    public static async Task<string> ResolveAsync(string model, ModelDownloadOptions options, HttpClient? http, ILogger? logger, IProgress<ModelDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (!IsHubReference(model))
        {
            return model;
        }

        HubModelReference reference;
        try
        {
            reference = HubModelReference.Parse(model);
        }
        catch (FormatException e)
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.InvalidReference, e.Message, e);
        }

        using var downloader = new HubModelDownloader(options, http, logger ?? NullLogger.Instance);
        return await downloader.DownloadAsync(reference, progress, cancellationToken).ConfigureAwait(false);
    }
}
