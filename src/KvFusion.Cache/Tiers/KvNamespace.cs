using System.Globalization;

namespace KvFusion.Cache.Tiers;

/// <summary>
/// The namespace a stored entry lives in: the tenant that owns it and the model that computed it. Every tier keys
/// its entries by namespace and entry, so a tenant's lookup never finds another tenant's entry, and an entry is never
/// read for a model other than the one that computed it.
/// </summary>
public readonly record struct KvNamespace
{
    /// <summary>The tenant used when none is configured (a single-tenant embedding).</summary>
    public const string DefaultTenant = "default";

    /// <summary>The longest tenant name.</summary>
    public const int MaxTenantLength = 64;

    /// <summary>The longest model fingerprint (hex digits).</summary>
    public const int MaxFingerprintLength = 128;

    /// <summary>Creates a namespace, checking both parts.</summary>
    /// <exception cref="ArgumentException">The tenant or the fingerprint is malformed (see <see cref="IsValidTenant"/>).</exception>
    public KvNamespace(string tenant, string modelFingerprint)
    {
        if (!IsValidTenant(tenant))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"A tenant is 1 to {MaxTenantLength} characters of lowercase letters, digits, '.', '_' and '-', starting with a letter or digit; got '{tenant}'."), nameof(tenant));
        }

        if (!IsValidFingerprint(modelFingerprint))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"A model fingerprint is 1 to {MaxFingerprintLength} lowercase hex digits; got '{modelFingerprint}'."), nameof(modelFingerprint));
        }

        Tenant = tenant;
        ModelFingerprint = modelFingerprint;
    }

    /// <summary>The tenant (a name safe in file names, Redis keys and RocksDB keys).</summary>
    public string Tenant { get; }

    /// <summary>The fingerprint of the model whose entries these are (lowercase hex).</summary>
    public string ModelFingerprint { get; }

    /// <summary>Whether <paramref name="tenant"/> is a tenant name: 1 to 64 of <c>[a-z0-9._-]</c>, starting with a letter or digit.</summary>
    public static bool IsValidTenant(string? tenant)
    {
        if (tenant is not { Length: >= 1 and <= MaxTenantLength } || !(char.IsAsciiLetterLower(tenant[0]) || char.IsAsciiDigit(tenant[0])))
        {
            return false;
        }

        foreach (var c in tenant)
        {
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="fingerprint"/> is 1 to 128 lowercase hex digits.</summary>
    public static bool IsValidFingerprint(string? fingerprint)
    {
        if (fingerprint is not { Length: >= 1 and <= MaxFingerprintLength })
        {
            return false;
        }

        foreach (var c in fingerprint)
        {
            if (!(char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary><c>{tenant}/{model fingerprint}</c>.</summary>
    public override string ToString() => $"{Tenant}/{ModelFingerprint}";
}
