using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace KvFusion.Hub;

/// <summary>
/// Downloads the files a model directory needs from a Hugging Face hub into
/// <c>CACHE/models--OWNER--NAME/snapshots/COMMIT</c>: resumable, verified, atomically published, locked across processes.
/// </summary>
public sealed class HubModelDownloader : IDisposable
{
    private const int BufferSize = 1 << 16;
    private readonly ModelDownloadOptions options;
    private readonly HttpClient http;
    private readonly bool ownsHttp;
    private readonly ILogger logger;

    /// <summary>Creates a downloader; it creates (and disposes) its own HTTP client when none is given.</summary>
    public HubModelDownloader(ModelDownloadOptions options, HttpClient? http = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.logger = logger ?? NullLogger.Instance;
        ownsHttp = http is null;
        this.http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Whether a file of a repository belongs in a model directory (config, weights, tokenizer files).</summary>
    public static bool IsModelFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Contains('/', StringComparison.Ordinal))
        {
            return false;
        }

        return path is "config.json" or "generation_config.json" or "tokenizer.json" or "tokenizer_config.json"
            or "special_tokens_map.json" or "tokenizer.model" or "vocab.json" or "merges.txt" or "added_tokens.json"
            or "chat_template.jinja" or "chat_template.json" or "model.safetensors.index.json"
            || path.EndsWith(".safetensors", StringComparison.Ordinal);
    }

    /// <summary>The repository's folder in the cache.</summary>
    public string RepositoryDirectory(HubModelReference reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return Path.Combine(options.CacheDirectory, $"models--{reference.Owner}--{reference.Name}");
    }

    /// <summary>Resolves <paramref name="reference"/> to a complete local snapshot, downloading what is missing.</summary>
    public async Task<string> DownloadAsync(HubModelReference reference, IProgress<ModelDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var repoDir = RepositoryDirectory(reference);
        if ((!options.Refresh || options.Offline) && CachedSnapshot(repoDir, reference) is { } cached)
        {
            logger.LogDebug("Using cached snapshot {Snapshot} for {Reference}", cached, reference);
            return cached;
        }

        if (options.Offline)
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.Offline,
                $"{reference} is not in the cache ({repoDir}) and {ModelDownloadOptions.OfflineVariable} is set: connect and unset it to download the model once, or pass a local model directory.");
        }

        var info = await GetRevisionAsync(reference, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(repoDir);
        await using var lockHandle = await AcquireLockAsync(repoDir, reference, cancellationToken).ConfigureAwait(false);

        var snapshot = Path.Combine(repoDir, "snapshots", info.Commit);
        if (!Directory.Exists(snapshot))
        {
            await DownloadSnapshotAsync(reference, info, repoDir, snapshot, progress, cancellationToken).ConfigureAwait(false);
        }

        WriteRef(repoDir, reference.Revision, info.Commit);
        return snapshot;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (ownsHttp)
        {
            http.Dispose();
        }
    }

    private static string? CachedSnapshot(string repoDir, HubModelReference reference)
    {
        var commit = reference.IsCommitSha ? reference.Revision : ReadRef(repoDir, reference.Revision);
        if (commit is null)
        {
            return null;
        }

        var snapshot = Path.Combine(repoDir, "snapshots", commit);
        return Directory.Exists(snapshot) ? snapshot : null;
    }

    private static string RefPath(string repoDir, string revision) =>
        Path.Combine([repoDir, "refs", .. revision.Split('/')]);

    private static string? ReadRef(string repoDir, string revision)
    {
        var path = RefPath(repoDir, revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    private static void WriteRef(string repoDir, string revision, string commit)
    {
        var path = RefPath(repoDir, revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, commit);
        File.Move(temp, path, overwrite: true);
    }

    private async Task<RevisionInfo> GetRevisionAsync(HubModelReference reference, CancellationToken ct)
    {
        var uri = new Uri(options.Endpoint, $"api/models/{reference.Owner}/{reference.Name}/revision/{Uri.EscapeDataString(reference.Revision)}?blobs=true");
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, uri), reference, ct).ConfigureAwait(false);
        await ThrowForStatusAsync(response, reference, ct).ConfigureAwait(false);
        JsonDocument json;
        try
        {
            json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.Network, $"The hub at {options.Endpoint} answered {uri} with something that is not JSON: check {ModelDownloadOptions.EndpointVariable}.", e);
        }

        using (json)
        {
            return RevisionInfo.From(json.RootElement, reference, options.Endpoint);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HubModelReference reference, CancellationToken ct)
    {
        if (options.Token is { } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        try
        {
            return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.Network,
                $"Could not reach the hub at {options.Endpoint} for {reference} ({e.Message}): check the connection or {ModelDownloadOptions.EndpointVariable}, or set {ModelDownloadOptions.OfflineVariable}=1 to use a cached copy.", e);
        }
        finally
        {
            request.Dispose();
        }
    }

    private async Task ThrowForStatusAsync(HttpResponseMessage response, HubModelReference reference, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var status = (int)response.StatusCode;
        var hubError = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() : null;
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        var gated = hubError == "GatedRepo" || body.Contains("gated", StringComparison.OrdinalIgnoreCase);
        throw response.StatusCode switch
        {
            HttpStatusCode.NotFound when hubError == "RevisionNotFound" => new ModelDownloadException(ModelDownloadErrorKind.NotFound,
                $"{reference}: the repository has no revision '{reference.Revision}': check the branch, tag or commit after '@'."),
            HttpStatusCode.NotFound => new ModelDownloadException(ModelDownloadErrorKind.NotFound,
                $"{reference.RepoId} was not found on {options.Endpoint}: check the spelling, or set {ModelDownloadOptions.TokenVariable} if it is private."),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden when gated => new ModelDownloadException(ModelDownloadErrorKind.Unauthorized,
                $"{reference.RepoId} is gated: accept its terms on {new Uri(options.Endpoint, reference.RepoId)} and set {ModelDownloadOptions.TokenVariable} to an access token of that account."),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new ModelDownloadException(ModelDownloadErrorKind.Unauthorized,
                options.Token is null
                    ? $"{reference.RepoId} needs authentication (HTTP {status}): it is private, gated or misspelt; set {ModelDownloadOptions.TokenVariable} to an access token that can read it."
                    : $"The hub refused {ModelDownloadOptions.TokenVariable} for {reference.RepoId} (HTTP {status}): check the token and that its account may read the model."),
            _ => new ModelDownloadException(ModelDownloadErrorKind.Network,
                $"The hub at {options.Endpoint} answered HTTP {status} for {reference}: try again later, or set {ModelDownloadOptions.OfflineVariable}=1 to use a cached copy."),
        };
    }

    private async Task<LockHandle> AcquireLockAsync(string repoDir, HubModelReference reference, CancellationToken ct)
    {
        var path = Path.Combine(repoDir, ".lock");
        var deadline = DateTime.UtcNow + options.LockTimeout;
        var logged = false;
        while (true)
        {
            try
            {
                return new LockHandle(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                if (!logged)
                {
                    logger.LogInformation("Waiting for another process downloading {Reference} (lock {Lock})", reference, path);
                    logged = true;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new ModelDownloadException(ModelDownloadErrorKind.LockTimeout,
                    $"Another process has held {path} for over {options.LockTimeout}: wait for it to finish, or delete the lock file if no download is running.", e);
            }
        }
    }

    private async Task DownloadSnapshotAsync(HubModelReference reference, RevisionInfo info, string repoDir, string snapshot, IProgress<ModelDownloadProgress>? progress, CancellationToken ct)
    {
        // Files are assembled in a per-commit staging folder, which becomes the snapshot in one rename once all verify.
        var staging = Path.Combine(repoDir, "incomplete", info.Commit);
        Directory.CreateDirectory(staging);
        var totalLength = info.Files.Sum(f => f.Size);
        long done = 0;
        logger.LogInformation("Downloading {Reference} ({Commit}): {Count} files, {Bytes} bytes", reference, info.Commit, info.Files.Count, totalLength);
        foreach (var file in info.Files)
        {
            var final = Path.Combine(staging, file.Name);
            if (!File.Exists(final))
            {
                var before = done;
                await DownloadFileAsync(reference, info.Commit, file, final, new Progress(progress, file, before, totalLength), ct).ConfigureAwait(false);
            }

            done += file.Size;
            progress?.Report(new ModelDownloadProgress(file.Name, file.Size, file.Size, done, totalLength));
        }

        Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
        Directory.Move(staging, snapshot);
        logger.LogInformation("Downloaded {Reference} into {Snapshot}", reference, snapshot);
    }

    private async Task DownloadFileAsync(HubModelReference reference, string commit, HubFile file, string final, Progress progress, CancellationToken ct)
    {
        var partial = final + ".partial";
        var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (have > file.Size)
        {
            File.Delete(partial);
            have = 0;
        }

        if (have < file.Size)
        {
            var uri = new Uri(options.Endpoint, $"{reference.Owner}/{reference.Name}/resolve/{commit}/{Uri.EscapeDataString(file.Name)}");
            var request = new HttpRequestMessage(HttpMethod.Get, uri);
            if (have > 0)
            {
                request.Headers.Range = new RangeHeaderValue(have, null);
                logger.LogInformation("Resuming {File} at byte {Offset}", file.Name, have);
            }

            using var response = await SendAsync(request, reference, ct).ConfigureAwait(false);
            await ThrowForStatusAsync(response, reference, ct).ConfigureAwait(false);
            if (have > 0 && response.StatusCode != HttpStatusCode.PartialContent)
            {
                // The server ignored the range: start over.
                have = 0;
            }

            await using var output = new FileStream(partial, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, useAsync: true);
            try
            {
                await using var input = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                var buffer = new byte[BufferSize];
                int read;
                while ((read = await input.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    if (have + read > file.Size)
                    {
                        break;
                    }

                    await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                    have += read;
                    progress.Report(have);
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new ModelDownloadException(ModelDownloadErrorKind.Network,
                    $"The download of {file.Name} for {reference} broke off at byte {have} of {file.Size} ({e.Message}): run the command again to resume.", e);
            }
        }

        await VerifyAsync(reference, file, partial, ct).ConfigureAwait(false);
        File.Move(partial, final, overwrite: true);
    }

    private static async Task VerifyAsync(HubModelReference reference, HubFile file, string path, CancellationToken ct)
    {
        var length = new FileInfo(path).Length;
        string? problem = null;
        if (length != file.Size)
        {
            problem = string.Create(CultureInfo.InvariantCulture, $"{length} bytes instead of {file.Size}");
        }
        else
        {
            var actual = await HashAsync(path, file, ct).ConfigureAwait(false);
            if (!string.Equals(actual, file.Hash, StringComparison.OrdinalIgnoreCase))
            {
                problem = $"{(file.IsLfs ? "sha256" : "git blob sha1")} {actual} instead of {file.Hash}";
            }
        }

        if (problem is not null)
        {
            File.Delete(path);
            throw new ModelDownloadException(ModelDownloadErrorKind.Integrity,
                $"{file.Name} of {reference} does not match the hub ({problem}); the bad copy was deleted: run the command again, and if it repeats, check the network or proxy.");
        }
    }

    /// <summary>The hash the hub publishes for a file: sha256 of the content for LFS files, else the git blob sha1.</summary>
    internal static async Task<string> HashAsync(string path, HubFile file, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, useAsync: true);
        if (file.IsLfs)
        {
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
        }

        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha1.AppendData(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"blob {stream.Length}\0")));
        var buffer = new byte[BufferSize];
        int read;
        while ((read = await stream.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            sha1.AppendData(buffer, 0, read);
        }

        return Convert.ToHexStringLower(sha1.GetHashAndReset());
    }

    private sealed class Progress(IProgress<ModelDownloadProgress>? target, HubFile file, long before, long total)
    {
        public void Report(long fileBytes) =>
            target?.Report(new ModelDownloadProgress(file.Name, fileBytes, file.Size, before + fileBytes, total));
    }

    private sealed class LockHandle(FileStream stream) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => stream.DisposeAsync();
    }
}

/// <summary>One file of a revision as the hub lists it.</summary>
internal sealed record HubFile(string Name, long Size, string Hash, bool IsLfs);

/// <summary>The commit a revision points to and the model files in it.</summary>
internal sealed record RevisionInfo(string Commit, IReadOnlyList<HubFile> Files)
{
    public static RevisionInfo From(JsonElement root, HubModelReference reference, Uri endpoint)
    {
        if (!root.TryGetProperty("sha", out var sha) || sha.GetString() is not { Length: 40 } commit || !commit.All(char.IsAsciiHexDigitLower)
            || !root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.Network,
                $"The hub at {endpoint} gave no commit sha or file list for {reference}: check {ModelDownloadOptions.EndpointVariable} points at a Hugging Face hub.");
        }

        var files = new List<HubFile>();
        foreach (var s in siblings.EnumerateArray())
        {
            var name = s.TryGetProperty("rfilename", out var n) ? n.GetString() : null;
            if (name is null || !HubModelDownloader.IsModelFile(name))
            {
                continue;
            }

            HubFile? file = null;
            if (s.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object
                && lfs.TryGetProperty("sha256", out var h) && lfs.TryGetProperty("size", out var lsize))
            {
                file = new HubFile(name, lsize.GetInt64(), h.GetString() ?? "", true);
            }
            else if (s.TryGetProperty("blobId", out var blob) && s.TryGetProperty("size", out var size))
            {
                file = new HubFile(name, size.GetInt64(), blob.GetString() ?? "", false);
            }

            if (file is null || file.Hash.Length == 0 || file.Size < 0)
            {
                throw new ModelDownloadException(ModelDownloadErrorKind.Network,
                    $"The hub listed {name} of {reference} without a size and hash, so it cannot be verified: is {endpoint} a Hugging Face hub answering ?blobs=true?");
            }

            files.Add(file);
        }

        if (!files.Any(f => f.Name == "config.json") || !files.Any(f => f.Name.EndsWith(".safetensors", StringComparison.Ordinal)))
        {
            throw new ModelDownloadException(ModelDownloadErrorKind.UnsupportedModel,
                $"{reference} has no config.json and safetensors weights at its top level: KvFusion loads safetensors models; pick a repository that has them.");
        }

        return new RevisionInfo(commit, files);
    }
}
