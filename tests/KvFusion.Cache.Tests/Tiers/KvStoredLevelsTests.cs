using KvFusion.Cache.Codecs;
using KvFusion.Cache.Keys;
using KvFusion.Cache.Tiers;

namespace KvFusion.Cache.Tests.Tiers;

public sealed class KvStoredLevelsTests
{
    private static readonly CacheKey Chunk = new(CacheEntryKind.Chunk, new string('b', 64), "sink:bos");

    [Fact]
    public void A_level_key_names_its_chunk_and_codec_and_survives_the_stored_name()
    {
        var level = KvStoredLevels.At(Chunk, KvCodecSpec.CacheGen(3));
        Assert.True(KvStoredLevels.IsLevel(level));
        Assert.False(KvStoredLevels.IsLevel(Chunk));
        Assert.True(KvStoredLevels.TryParse(level, out var chunk, out var codec));
        Assert.Equal(Chunk, chunk);
        Assert.Equal(KvCodecSpec.CacheGen(3), codec);
        Assert.True(KvEntryName.TryParse(KvEntryName.Format(level), out var parsed));
        Assert.Equal(level, parsed);
    }

    [Fact]
    public void Only_a_chunks_own_key_has_levels_and_a_malformed_level_does_not_parse()
    {
        Assert.Throws<ArgumentException>(() => KvStoredLevels.At(new CacheKey(CacheEntryKind.PrefixBlock, new string('c', 64), ""), KvCodecSpec.Fp8));
        Assert.Throws<ArgumentException>(() => KvStoredLevels.At(KvStoredLevels.At(Chunk, KvCodecSpec.Fp8), KvCodecSpec.Raw));
        Assert.False(KvStoredLevels.TryParse(Chunk with { Variant = "sink:bos" + KvStoredLevels.Marker + "gzip" }, out _, out _));
        Assert.False(KvStoredLevels.TryParse(Chunk, out _, out _));
    }
}
