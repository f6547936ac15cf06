namespace KvFusion.Server.Tests.Security;

/// <summary>A server with three API keys: tenants alpha and beta, and an admin key of tenant ops.</summary>
public sealed class KeyedServer() : ServerFixture(new Dictionary<string, string?>
{
    ["KvFusion:Auth:Keys:0:Key"] = Alpha,
    ["KvFusion:Auth:Keys:0:Tenant"] = "alpha",
    ["KvFusion:Auth:Keys:1:Key"] = Beta,
    ["KvFusion:Auth:Keys:1:Tenant"] = "beta",
    ["KvFusion:Auth:Keys:2:Key"] = Admin,
    ["KvFusion:Auth:Keys:2:Tenant"] = "ops",
    ["KvFusion:Auth:Keys:2:Admin"] = "true",
})
{
    public const string Alpha = "alpha-key-0123456789abcdef";
    public const string Beta = "beta-key-0123456789abcdef0";
    public const string Admin = "ops-admin-key-0123456789ab";
}
