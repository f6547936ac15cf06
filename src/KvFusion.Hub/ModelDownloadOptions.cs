namespace KvFusion.Hub;

/// <summary>Where models come from and where they are kept.</summary>
public sealed class ModelDownloadOptions
{
    /// <summary>The environment variable naming the hub's endpoint.</summary>
    public const string EndpointVariable = "HF_ENDPOINT";

    /// <summary>The environment variable holding an access token (for gated or private models).</summary>
    public const string TokenVariable = "HF_TOKEN";

    /// <summary>The environment variable naming the cache directory.</summary>
    public const string CacheVariable = "KVFUSION_CACHE";

    /// <summary>The environment variable that, set to 1/true/yes, forbids network access.</summary>
    public const string OfflineVariable = "HF_HUB_OFFLINE";

    /// <summary>The public hub.</summary>
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary>The hub's base address.</summary>
    public Uri Endpoint { get; set; } = DefaultEndpoint;

    /// <summary>An access token sent as a bearer token, or null.</summary>
    public string? Token { get; set; }

    /// <summary>The cache root; snapshots live in <c>models--OWNER--NAME/snapshots/COMMIT</c> below it.</summary>
    public string CacheDirectory { get; set; } = DefaultCacheDirectory;

    /// <summary>Use only cached snapshots; never touch the network.</summary>
    public bool Offline { get; set; }

    /// <summary>
    /// Ask the hub what a branch or tag points to even when a snapshot for it is cached (by default a cached
    /// reference is used without the network; a commit sha never needs it).
    /// </summary>
    public bool Refresh { get; set; }

    /// <summary>How long to wait for another process that holds the snapshot's lock.</summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary><c>~/.cache/kvfusion</c>.</summary>
    public static string DefaultCacheDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kvfusion");

    /// <summary>Options from HF_ENDPOINT, HF_TOKEN, KVFUSION_CACHE and HF_HUB_OFFLINE, with defaults for those unset.</summary>
    public static ModelDownloadOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Options from a variable lookup (testable without touching the process environment).</summary>
    public static ModelDownloadOptions FromEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        var options = new ModelDownloadOptions();
        if (variable(EndpointVariable) is { Length: > 0 } endpoint)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
            {
                throw new ArgumentException($"{EndpointVariable}='{endpoint}' is not an absolute http(s) address.");
            }

            options.Endpoint = uri;
        }

        if (variable(TokenVariable) is { Length: > 0 } token)
        {
            options.Token = token.Trim();
        }

        if (variable(CacheVariable) is { Length: > 0 } cache)
        {
            options.CacheDirectory = cache;
        }

        if (variable(OfflineVariable) is { Length: > 0 } offline)
        {
            options.Offline = offline.Trim().ToLowerInvariant() switch
            {
                "1" or "true" or "yes" or "on" => true,
                "0" or "false" or "no" or "off" => false,
                _ => throw new ArgumentException($"{OfflineVariable}='{offline}' is not a boolean: use 1 or 0."),
            };
        }

        options.Validate();
        return options;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Endpoint is null || !Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"The hub endpoint '{Endpoint}' must be an absolute http or https address.", nameof(Endpoint));
        }

        if (string.IsNullOrWhiteSpace(CacheDirectory))
        {
            throw new ArgumentException("The model cache directory must not be empty.", nameof(CacheDirectory));
        }

        if (Token is { } t && (t.Length == 0 || t.Any(char.IsWhiteSpace)))
        {
            throw new ArgumentException("The hub token must not be empty or contain whitespace.", nameof(Token));
        }

        if (LockTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"The lock timeout must be positive, got {LockTimeout}.", nameof(LockTimeout));
        }
    }
}
