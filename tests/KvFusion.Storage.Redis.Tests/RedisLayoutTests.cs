using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>The manifest format and the key layout, without a server.</summary>
public sealed class RedisLayoutTests
{
    [Fact]
    public void A_manifest_round_trips_and_describes_its_pieces()
    {
        var value = Keys.Random(2500, 1);
        var manifest = RedisManifest.For(UInt128.MaxValue - 7, value, 1024);
        var bytes = manifest.ToBytes();
        Assert.Equal(RedisManifest.Size, bytes.Length);
        Assert.Equal("KVFR"u8.ToArray(), bytes[..4]);
        Assert.True(RedisManifest.TryParse(bytes, 10_000, out var back, out _));
        Assert.Equal(manifest, back);
        Assert.Equal((3, 1024, 1024, 452), (back.PieceCount, back.PieceLength(0), back.PieceLength(1), back.PieceLength(2)));
        Assert.Equal(0, RedisManifest.For(1, ReadOnlySpan<byte>.Empty, 1024).PieceCount);
    }

    [Theory]
    [InlineData(0, "magic")]
    [InlineData(4, "version")]
    [InlineData(6, "checksum")]
    [InlineData(20, "checksum")]
    [InlineData(50, "checksum")]
    public void A_damaged_manifest_is_refused_with_the_reason(int offset, string reason)
    {
        var bytes = RedisManifest.For(5, Keys.Random(3000, 2), 1024).ToBytes();
        bytes[offset] ^= 0x01;
        Assert.False(RedisManifest.TryParse(bytes, long.MaxValue, out _, out var why));
        Assert.Contains(reason, why, StringComparison.Ordinal);
        Assert.Throws<KvFusion.Cache.Storage.KvBlobException>(() => RedisManifest.Parse(bytes, long.MaxValue, "entry"));
    }

    [Fact]
    public void A_manifest_of_the_wrong_size_or_over_the_limit_is_refused()
    {
        var bytes = RedisManifest.For(5, Keys.Random(3000, 2), 1024).ToBytes();
        Assert.False(RedisManifest.TryParse(bytes.AsSpan(0, 55), long.MaxValue, out _, out var shortReason));
        Assert.Contains("55 bytes", shortReason, StringComparison.Ordinal);
        Assert.False(RedisManifest.TryParse(bytes, 2999, out _, out var limit));
        Assert.Contains("MaxValueBytes", limit, StringComparison.Ordinal);
        Assert.True(RedisManifest.TryParse(bytes, 3000, out _, out _));
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("cachegen:l2")]
    [InlineData("a variant/with {braces} and ünïcode")]
    [InlineData("")]
    public void Manifest_keys_parse_back_and_no_key_holds_a_hash_tag(string variant)
    {
        var layout = new RedisKeyLayout("kvf");
        var key = new TierKey(new KvNamespace("tenant.a_1-x", "abc123"), new CacheKey(CacheEntryKind.Chunk, "deadbeef", variant));
        var manifestKey = layout.Manifest(key);
        Assert.StartsWith("kvf:m:tenant.a_1-x:abc123:c/deadbeef/", manifestKey, StringComparison.Ordinal);
        Assert.True(layout.TryParseManifest(manifestKey, out var back));
        Assert.Equal(key, back);

        var pieces = Enumerable.Range(0, 3).Select(i => layout.Piece(key, 0xabcdefUL, i)).ToArray();
        Assert.Equal("kvf:p:tenant.a_1-x:abc123:" + key.EntryName + ":00000000000000000000000000abcdef:2", pieces[2]);
        foreach (var k in pieces.Append(manifestKey))
        {
            Assert.DoesNotContain('{', k);
            Assert.DoesNotContain('}', k);
            Assert.DoesNotContain(' ', k);
        }
    }

    [Theory]
    [InlineData("other:m:t:ab:p/ab")]
    [InlineData("kvf:p:t:ab:p/ab:00:0")]
    [InlineData("kvf:m:t:ab")]
    [InlineData("kvf:m:T:ab:p/ab")]
    [InlineData("kvf:m:t:XY:p/ab")]
    [InlineData("kvf:m:t:ab:x/ab")]
    [InlineData("kvf:m:t:ab:c/ab/%zz")]
    public void Keys_the_layout_did_not_write_are_not_entries(string redisKey)
    {
        Assert.False(new RedisKeyLayout("kvf").TryParseManifest(redisKey, out _));
    }

    [Fact]
    public void The_scan_pattern_covers_one_namespace_or_all()
    {
        var layout = new RedisKeyLayout("kvf");
        Assert.Equal("kvf:m:*", layout.ManifestPattern(null));
        Assert.Equal("kvf:m:alice:ab12:*", layout.ManifestPattern(new KvNamespace("alice", "ab12")));
    }
}
