using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Cache.Tests.Tiers;

public sealed class KvEntryNameTests
{
    private const string Id = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff";

    [Theory]
    [InlineData("sink:bos")]
    [InlineData("")]
    [InlineData("sink:system/prompt {x} 100%")]
    [InlineData("sink:é\u0001")]
    public void A_chunk_name_parses_back_to_its_key_and_holds_no_separator(string variant)
    {
        var key = new CacheKey(CacheEntryKind.Chunk, Id, variant);
        var name = KvEntryName.Format(key);
        Assert.DoesNotContain(name[(2 + Id.Length + 1)..], c => c is '/' or ' ' or '{' or '}' or < ' ');
        Assert.True(KvEntryName.TryParse(name, out var back));
        Assert.Equal(key, back);
    }

    [Fact]
    public void A_prefix_block_name_parses_back()
    {
        var key = new CacheKey(CacheEntryKind.PrefixBlock, Id, string.Empty);
        Assert.Equal("p/" + Id, KvEntryName.Format(key));
        Assert.True(KvEntryName.TryParse("p/" + Id, out var back));
        Assert.Equal(key, back);
    }

    [Fact]
    public void Distinct_variants_have_distinct_names()
    {
        var a = KvEntryName.Format(new CacheKey(CacheEntryKind.Chunk, Id, "a%41"));
        var b = KvEntryName.Format(new CacheKey(CacheEntryKind.Chunk, Id, "aA"));
        Assert.NotEqual(a, b);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("x/00")]
    [InlineData("p/XYZ")]
    [InlineData("c/00ff")]
    [InlineData("c/00ff/a b")]
    [InlineData("c/00ff/%4")]
    [InlineData("c/00ff/%zz")]
    [InlineData("c/00ff/%41")]
    [InlineData("c/00ff/%ff")]
    public void Anything_else_does_not_parse(string? name) => Assert.False(KvEntryName.TryParse(name, out _));

    [Fact]
    public void A_key_that_cannot_be_stored_is_refused_with_the_reason()
    {
        Assert.Contains("hex", Assert.Throws<ArgumentException>(() => KvEntryName.Format(new CacheKey(CacheEntryKind.Chunk, "../x", ""))).Message, StringComparison.Ordinal);
        Assert.Contains("variant", Assert.Throws<ArgumentException>(() => KvEntryName.Format(new CacheKey(CacheEntryKind.Chunk, Id, new string('v', 300)))).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Alice")]
    [InlineData("")]
    [InlineData("-x")]
    [InlineData("a/b")]
    [InlineData("a:b")]
    public void A_malformed_tenant_is_refused(string tenant) =>
        Assert.Contains("tenant", Assert.Throws<ArgumentException>(() => new KvNamespace(tenant, "00ff")).Message, StringComparison.Ordinal);

    [Fact]
    public void A_malformed_model_fingerprint_is_refused() =>
        Assert.Contains("fingerprint", Assert.Throws<ArgumentException>(() => new KvNamespace("alice", "ABC")).Message, StringComparison.Ordinal);
}
