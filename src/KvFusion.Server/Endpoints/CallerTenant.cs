using KvFusion.Cache.Tiers;
using KvFusion.Server.Auth;
using KvFusion.Server.Errors;
using KvFusion.Server.Inference;
using Microsoft.AspNetCore.Http;

namespace KvFusion.Server.Endpoints;

/// <summary>Whose namespace a request works in: the caller's, or (admin keys only) the one <c>?tenant=</c> names.</summary>
internal static class CallerTenant
{
    public static TenantEngine Resolve(HttpContext http, ModelRuntime runtime, string? tenant = null)
    {
        var own = TenantClaims.TenantOf(http.User);
        if (string.IsNullOrEmpty(tenant) || tenant == own)
        {
            return runtime.For(own);
        }

        if (!TenantClaims.IsAdmin(http.User))
        {
            throw ApiProblemException.Forbidden("Only an admin key may name another tenant.");
        }

        return KvNamespace.IsValidTenant(tenant)
            ? runtime.For(tenant)
            : throw ApiProblemException.BadRequest("tenant is not a valid tenant name.");
    }
}
