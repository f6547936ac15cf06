using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using KvFusion.Server.Errors;
using KvFusion.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvFusion.Server.Auth;

/// <summary>
/// <c>Authorization: Bearer KEY</c> against the configured keys, each mapped to a tenant. Keys are compared by their
/// SHA-256 in fixed time, so neither a lookup nor a comparison leaks how much of a guess was right. With no keys
/// configured, loopback clients are one anonymous tenant and every other client is refused.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyDirectory keys,
    ProblemWriter problems) : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (keys.IsEmpty)
        {
            return Task.FromResult(IsLoopback(Context.Connection.RemoteIpAddress)
                ? AuthenticateResult.Success(Ticket(keys.AnonymousTenant, admin: false, keyId: "anonymous"))
                : AuthenticateResult.Fail("This service has no API keys configured and serves only clients on this machine."));
        }

        if (string.IsNullOrEmpty(header))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.Fail("Send the API key as 'Authorization: Bearer KEY'."));
        }

        var entry = keys.Find(header.AsSpan(7).Trim());
        return Task.FromResult(entry is null
            ? AuthenticateResult.Fail("The API key is not valid.")
            : AuthenticateResult.Success(Ticket(entry.Tenant, entry.Admin, entry.KeyId)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync().ConfigureAwait(false);
        Response.Headers.WWWAuthenticate = "Bearer";
        var detail = result.Failure?.Message ?? "This endpoint needs an API key: send 'Authorization: Bearer KEY'.";
        await problems.WriteAsync(Context, new ApiProblemException(401, "Unauthorized", detail, "invalid_api_key"), Context.RequestAborted).ConfigureAwait(false);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        problems.WriteAsync(Context, ApiProblemException.Forbidden("This API key may not do this."), Context.RequestAborted);

    private static AuthenticationTicket Ticket(string tenant, bool admin, string keyId)
    {
        var claims = new List<Claim> { new(TenantClaims.Tenant, tenant), new(TenantClaims.KeyId, keyId) };
        if (admin)
        {
            claims.Add(new Claim(ClaimTypes.Role, TenantClaims.AdminRole));
        }

        return new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName);
    }

    private static bool IsLoopback(IPAddress? address) => address is null || IPAddress.IsLoopback(address);
}

/// <summary>The claims the service puts on a caller.</summary>
public static class TenantClaims
{
    /// <summary>The caller's tenant.</summary>
    public const string Tenant = "kvfusion:tenant";

    /// <summary>An id of the key (a hash prefix, never the key), for rate limits and logs.</summary>
    public const string KeyId = "kvfusion:key";

    /// <summary>The role of admin keys.</summary>
    public const string AdminRole = "kvfusion-admin";

    /// <summary>The tenant of an authenticated caller.</summary>
    public static string TenantOf(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.FindFirstValue(Tenant) ?? throw new InvalidOperationException("The caller has no tenant claim.");
    }

    /// <summary>Whether the caller holds an admin key.</summary>
    public static bool IsAdmin(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.IsInRole(AdminRole);
    }
}

/// <summary>The configured keys by their SHA-256.</summary>
public sealed class ApiKeyDirectory
{
    private readonly Dictionary<string, Entry> _byHash = new(StringComparer.Ordinal);

    /// <summary>Indexes the keys of <paramref name="options"/>.</summary>
    public ApiKeyDirectory(IOptions<KvFusionServerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        AnonymousTenant = options.Value.Auth.AnonymousTenant;
        foreach (var k in options.Value.Auth.Keys)
        {
            var hash = Hash(k.Key);
            _byHash[Convert.ToHexStringLower(hash)] = new Entry(hash, k.Tenant, k.Admin, Convert.ToHexStringLower(hash)[..12]);
        }
    }

    /// <summary>Whether no keys are configured (anonymous loopback mode).</summary>
    public bool IsEmpty => _byHash.Count == 0;

    /// <summary>The tenant of anonymous callers.</summary>
    public string AnonymousTenant { get; }

    /// <summary>The entry of <paramref name="key"/>, or null.</summary>
    internal Entry? Find(ReadOnlySpan<char> key)
    {
        var hash = Hash(key);
        return _byHash.TryGetValue(Convert.ToHexStringLower(hash), out var entry) && CryptographicOperations.FixedTimeEquals(hash, entry.Hash) ? entry : null;
    }

    private static byte[] Hash(ReadOnlySpan<char> key)
    {
        var bytes = new byte[Encoding.UTF8.GetMaxByteCount(key.Length)];
        var n = Encoding.UTF8.GetBytes(key, bytes);
        return SHA256.HashData(bytes.AsSpan(0, n));
    }

    internal sealed record Entry(byte[] Hash, string Tenant, bool Admin, string KeyId);
}
