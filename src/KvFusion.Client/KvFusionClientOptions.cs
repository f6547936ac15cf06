namespace KvFusion.Client;

/// <summary>Where the KvFusion service is and how to call it.</summary>
public sealed class KvFusionClientOptions
{
    /// <summary>The default <see cref="Timeout"/>: 100 seconds, as <see cref="HttpClient"/>'s.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(100);

    /// <summary>
    /// The service's address (<c>http</c> or <c>https</c>, e.g. <c>http://localhost:8080/</c>; a path prefix is kept).
    /// Required by <see cref="KvFusionClient(KvFusionClientOptions)"/>; with a given <see cref="HttpClient"/> it is used
    /// only when that client has no <see cref="HttpClient.BaseAddress"/>.
    /// </summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>The API key, sent as <c>Authorization: Bearer &lt;key&gt;</c> on every request; null sends none.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// How long a request may take until its response headers arrive (streamed bodies are not limited by it); positive,
    /// or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>. Applies to the <see cref="HttpClient"/> that
    /// <see cref="KvFusionClient(KvFusionClientOptions)"/> creates, not to one given to the client.
    /// </summary>
    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    /// <summary>Checks the options; throws an <see cref="ArgumentException"/> naming the first wrong one.</summary>
    internal void Validate(bool requireBaseAddress, string paramName)
    {
        if (BaseAddress is null)
        {
            if (requireBaseAddress)
            {
                throw new ArgumentException($"{nameof(KvFusionClientOptions)}.{nameof(BaseAddress)} is required: the service's http or https address.", paramName);
            }
        }
        else
        {
            ValidateBaseAddress(BaseAddress, $"{nameof(KvFusionClientOptions)}.{nameof(BaseAddress)}", paramName);
        }

        if (ApiKey is not null)
        {
            if (ApiKey.Length == 0)
            {
                throw new ArgumentException($"{nameof(KvFusionClientOptions)}.{nameof(ApiKey)} is empty; leave it null to send no key.", paramName);
            }

            foreach (var c in ApiKey)
            {
                if (c is < '!' or > '~')
                {
                    throw new ArgumentException($"{nameof(KvFusionClientOptions)}.{nameof(ApiKey)} must be visible ASCII characters without spaces (it is sent in the Authorization header).", paramName);
                }
            }
        }

        if (Timeout != System.Threading.Timeout.InfiniteTimeSpan && (Timeout <= TimeSpan.Zero || Timeout.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentException($"{nameof(KvFusionClientOptions)}.{nameof(Timeout)} must be positive and at most {TimeSpan.FromMilliseconds(int.MaxValue)}, or Timeout.InfiniteTimeSpan; it is {Timeout}.", paramName);
        }
    }

    /// <summary>Checks that an address is an absolute http(s) URI without query or fragment.</summary>
    internal static void ValidateBaseAddress(Uri address, string what, string paramName)
    {
        if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"{what} must be an absolute http or https URI; '{address}' is not.", paramName);
        }

        if (address.Query.Length > 0 || address.Fragment.Length > 0)
        {
            throw new ArgumentException($"{what} must not have a query or fragment; '{address}' has.", paramName);
        }
    }

    /// <summary>The address with a trailing slash, so relative paths resolve below its path prefix.</summary>
    internal static Uri WithTrailingSlash(Uri address) =>
        address.AbsolutePath.EndsWith('/') ? address : new Uri(address.GetLeftPart(UriPartial.Path) + "/", UriKind.Absolute);
}
