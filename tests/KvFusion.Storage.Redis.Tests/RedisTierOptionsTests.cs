namespace KvFusion.Storage.Redis.Tests;

public sealed class RedisTierOptionsTests
{
    private static readonly RedisTierOptions Good = new() { Configuration = "127.0.0.1:6390" };

    public static TheoryData<string, RedisTierOptions> Bad => new()
    {
        { "Configuration", Good with { Configuration = "" } },
        { "Configuration", Good with { Configuration = "127.0.0.1:6390,notAnOption=1" } },
        { "Configuration", Good with { Configuration = "password=x" } },
        { "KeyPrefix", Good with { KeyPrefix = "" } },
        { "KeyPrefix", Good with { KeyPrefix = "has{tag}" } },
        { "KeyPrefix", Good with { KeyPrefix = "glob*" } },
        { "KeyPrefix", Good with { KeyPrefix = new string('k', 65) } },
        { "PieceBytes", Good with { PieceBytes = 1023 } },
        { "PieceBytes", Good with { PieceBytes = (64 << 20) + 1 } },
        { "Connections", Good with { Connections = 0 } },
        { "Connections", Good with { Connections = 65 } },
        { "TimeToLive", Good with { TimeToLive = TimeSpan.Zero } },
        { "TimeToLive", Good with { TimeToLive = TimeSpan.FromSeconds(-1) } },
        { "PieceExpiryGrace", Good with { PieceExpiryGrace = TimeSpan.FromSeconds(5) } },
        { "MaxValueBytes", Good with { MaxValueBytes = 0 } },
        { "MaxValueBytes", Good with { MaxValueBytes = long.MaxValue } },
        { "ConnectTimeout", Good with { ConnectTimeout = TimeSpan.Zero } },
        { "OperationTimeout", Good with { OperationTimeout = TimeSpan.Zero } },
    };

    [Fact]
    public void The_defaults_with_an_endpoint_are_valid()
    {
        Good.Validate();
        Assert.Equal("kvf", Good.KeyPrefix);
        Assert.Equal(1 << 20, Good.PieceBytes);
        Assert.Equal(TimeSpan.FromHours(24), Good.TimeToLive);
    }

    [Theory]
    [MemberData(nameof(Bad))]
    public void A_bad_setting_is_named_by_the_error(string setting, RedisTierOptions options)
    {
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.StartsWith(setting, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connecting_with_bad_options_throws_before_connecting()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => RedisTier.ConnectAsync(Good with { PieceBytes = 1 }));
    }

    [Theory]
    [InlineData("redis://127.0.0.1:6390", "127.0.0.1:6390")]
    [InlineData("redis://localhost", "localhost:6379")]
    [InlineData("REDIS://10.0.0.1:7101,10.0.0.2:7102,10.0.0.3", "10.0.0.1:7101,10.0.0.2:7102,10.0.0.3:6379")]
    [InlineData("redis://127.0.0.1:6390/", "127.0.0.1:6390")]
    [InlineData("redis://127.0.0.1:6390/3", "127.0.0.1:6390,defaultDatabase=3")]
    [InlineData("redis://:s%40cret@h:1", "h:1,password=s@cret")]
    [InlineData("redis://s3cret@h:1", "h:1,password=s3cret")]
    [InlineData("redis://alice:pw@h:1", "h:1,user=alice,password=pw")]
    [InlineData("rediss://h:6380", "h:6380,ssl=true")]
    [InlineData("redis://h:1?name=replica-2&keepAlive=30", "h:1,name=replica-2,keepAlive=30")]
    [InlineData("redis://[::1]:6390", "[::1]:6390")]
    public void A_redis_uri_becomes_a_configuration(string uri, string configuration)
    {
        Assert.True(RedisTierOptions.IsRedisUri(uri));
        var options = RedisTierOptions.ParseUri(uri);
        Assert.Equal(configuration, options.Configuration);
        options.Validate();
    }

    [Fact]
    public void A_redis_uri_keeps_the_template_settings()
    {
        var options = RedisTierOptions.ParseUri("redis://h:1", new RedisTierOptions { KeyPrefix = "svc", PieceBytes = 4096 });
        Assert.Equal(("svc", 4096, "h:1"), (options.KeyPrefix, options.PieceBytes, options.Configuration));
    }

    [Theory]
    [InlineData("http://h:1", "does not start with redis://")]
    [InlineData("h:1", "does not start with redis://")]
    [InlineData("redis://", "names no host")]
    [InlineData("redis://:pw@", "names no host")]
    [InlineData("redis://h:1,", "empty")]
    [InlineData("redis://h:0", "port")]
    [InlineData("redis://h:65536", "port")]
    [InlineData("redis://h:port", "port")]
    [InlineData("redis://h:1:2", "port")]
    [InlineData("redis://[::1", "'['")]
    [InlineData("redis://h:1/16", "database")]
    [InlineData("redis://h:1/db", "database")]
    [InlineData("redis://h:1?novalue", "option=value")]
    [InlineData("redis://h:1?noSuchOption=1", "noSuchOption")]
    public void A_malformed_redis_uri_says_what_is_wrong(string uri, string why)
    {
        var e = Assert.Throws<ArgumentException>(() => RedisTierOptions.ParseUri(uri));
        Assert.Contains("Redis URI is malformed", e.Message, StringComparison.Ordinal);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_uri_error_never_repeats_the_password()
    {
        var e = Assert.Throws<ArgumentException>(() => RedisTierOptions.ParseUri("redis://alice:hunter2@h:99999"));
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }
}
