using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Time.Testing;
using static KvFusion.Cache.Tests.Tiers.TierTestData;

namespace KvFusion.Cache.Tests.Tiers;

public sealed class ThrottledKvTierTests
{
    // 8 Mbit/s: one byte per microsecond.
    private const double Rate = 8_000_000;

    [Fact]
    public async Task A_read_arrives_after_its_bytes_at_the_links_rate_plus_the_latency()
    {
        var time = new FakeTimeProvider();
        await using var tier = new ThrottledKvTier(new HostMemoryTier(), new ThrottledLink(Rate, TimeSpan.FromMilliseconds(5), time));
        await PutUnthrottled(tier, time, Key(1), Bytes(100_000));

        var read = tier.GetAsync(Key(1)).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(104));
        Assert.False(read.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(Bytes(100_000), (await read)!.Value.ToArray());
        Assert.Equal(200_000, tier.Link.Bytes);
    }

    [Fact]
    public async Task Concurrent_reads_share_the_pipe_and_a_miss_pays_only_the_latency()
    {
        var time = new FakeTimeProvider();
        await using var tier = new ThrottledKvTier(new HostMemoryTier(), new ThrottledLink(Rate, TimeSpan.FromMilliseconds(2), time));
        await PutUnthrottled(tier, time, Key(1), Bytes(10_000, 1));
        await PutUnthrottled(tier, time, Key(2), Bytes(10_000, 2));

        var first = tier.GetAsync(Key(1)).AsTask();
        var second = tier.GetAsync(Key(2)).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(12));
        Assert.True(first.IsCompleted);
        Assert.False(second.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.True(second.IsCompleted);

        var miss = tier.GetAsync(Key(3)).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Null(await miss);
    }

    [Fact]
    public async Task A_rate_change_applies_to_the_transfers_after_it()
    {
        var time = new FakeTimeProvider();
        await using var tier = new ThrottledKvTier(new HostMemoryTier(), new ThrottledLink(Rate, TimeSpan.Zero, time));
        await PutUnthrottled(tier, time, Key(1), Bytes(10_000));
        tier.Link.BitsPerSecond = Rate / 10;
        var read = tier.GetAsync(Key(1)).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(read.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.NotNull(await read);
    }

    [Fact]
    public async Task A_cancelled_read_stops_waiting()
    {
        var time = new FakeTimeProvider();
        await using var tier = new ThrottledKvTier(new HostMemoryTier(), new ThrottledLink(Rate, TimeSpan.FromSeconds(10), time));
        using var cts = new CancellationTokenSource();
        var read = tier.GetAsync(Key(1), cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(-1, 0)]
    [InlineData(double.NaN, 0)]
    [InlineData(double.PositiveInfinity, 0)]
    [InlineData(1e6, -1)]
    public void A_link_refuses_a_rate_or_latency_out_of_range(double bitsPerSecond, int latencyMs) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThrottledLink(bitsPerSecond, TimeSpan.FromMilliseconds(latencyMs)));

    private static async Task PutUnthrottled(ThrottledKvTier tier, FakeTimeProvider time, TierKey key, byte[] blob)
    {
        var put = tier.PutAsync(key, blob).AsTask();
        time.Advance(TimeSpan.FromSeconds(10));
        await put;
    }
}
