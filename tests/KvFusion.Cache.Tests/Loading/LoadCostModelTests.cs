using KvFusion.Cache.Codecs;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Time.Testing;
using static KvFusion.Cache.Tests.Tiers.TierTestData;

namespace KvFusion.Cache.Tests.Loading;

public sealed class LoadCostModelTests
{
    /// <summary>The number of reads within which the model must have found a throttled tier's rate and latency.</summary>
    private const int ConvergenceReads = 6;

    [Fact]
    public void A_fit_recovers_an_exact_line_and_splits_nothing_off_while_sizes_do_not_spread()
    {
        var fit = new OnlineLinearFit(0.75);
        fit.Observe(100, 5);
        fit.Observe(100, 5);
        Assert.Equal(0, fit.Intercept);
        Assert.Equal(0.05, fit.Slope, 12);

        var line = new OnlineLinearFit(0.75);
        foreach (var x in new[] { 10.0, 400, 50, 1000 })
        {
            line.Observe(x, 2 + (3 * x));
        }

        Assert.Equal(2, line.Intercept, 6);
        Assert.Equal(3, line.Slope, 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => fit.Observe(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => fit.Observe(1, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OnlineLinearFit(0));
    }

    [Fact]
    public async Task The_model_finds_a_throttled_tiers_rate_and_latency_within_six_reads_and_follows_a_change()
    {
        var time = new FakeTimeProvider();
        var link = new ThrottledLink(100e6, TimeSpan.FromMilliseconds(3), time);
        await using var tier = new ThrottledKvTier(new HostMemoryTier(), link);
        var sizes = new[] { 40_000, 700_000, 150_000, 1_000_000, 90_000, 400_000, 60_000, 800_000, 250_000, 500_000, 30_000, 900_000 };
        for (var i = 0; i < sizes.Length; i++)
        {
            var put = tier.PutAsync(Key(i), Bytes(sizes[i], i)).AsTask();
            time.Advance(TimeSpan.FromSeconds(10));
            await put;
        }

        var model = new LoadCostModel();
        Assert.Null(model.Transfer(tier.Name));
        for (var i = 0; i < ConvergenceReads; i++)
        {
            await TimedRead(model, tier, time, Key(i));
        }

        var estimate = model.Transfer(tier.Name)!.Value;
        Assert.InRange(estimate.BitsPerSecond, 90e6, 110e6);
        Assert.InRange(estimate.Fixed, 0.002, 0.004);

        link.BitsPerSecond = 10e6;
        for (var i = ConvergenceReads; i < 2 * ConvergenceReads; i++)
        {
            await TimedRead(model, tier, time, Key(i));
        }

        estimate = model.Transfer(tier.Name)!.Value;
        Assert.InRange(estimate.BitsPerSecond, 9e6, 11e6);
    }

    [Fact]
    public void Decode_and_recompute_estimates_exist_once_observed_and_an_unobserved_codec_has_none()
    {
        var model = new LoadCostModel(new LoadCostModelOptions { MinSamples = 2 });
        Assert.Null(model.Recompute("m1"));
        model.ObserveRecompute("m1", 1000, TimeSpan.FromMilliseconds(10));
        Assert.Null(model.Recompute("m1"));
        model.ObserveRecompute("m1", 3000, TimeSpan.FromMilliseconds(30));
        Assert.Equal(1e-5, model.Recompute("m1")!.Value.Predict(1), 9);
        Assert.Null(model.Recompute("m2"));
        Assert.Equal(1e-2, model.For("m1").RecomputeSeconds(1000)!.Value, 9);
        Assert.Null(model.For("m2").RecomputeSeconds(1000));

        model.ObserveDecode(KvCodecSpec.CacheGen(2), 256, TimeSpan.FromMilliseconds(4));
        model.ObserveDecode(KvCodecSpec.CacheGen(2), 512, TimeSpan.FromMilliseconds(8));
        Assert.Equal(0.016, model.Decode(KvCodecSpec.CacheGen(2))!.Value.Predict(1024), 9);
        Assert.Null(model.Decode(KvCodecSpec.Raw));
        var costs = model.For("m1");
        Assert.Null(costs.DecodeSeconds(KvCodecSpec.Raw, 10));
        Assert.Null(costs.TransferSeconds("redis", 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ObserveRecompute("m1", 1, TimeSpan.FromSeconds(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoadCostModel(new LoadCostModelOptions { Forgetting = 2 }));
    }

    /// <summary>Reads a key, advancing the fake clock a millisecond at a time (the resolution a real timer gives) until it arrives.</summary>
    private static async Task TimedRead(LoadCostModel model, ThrottledKvTier tier, FakeTimeProvider time, TierKey key)
    {
        var start = time.GetTimestamp();
        var read = tier.GetAsync(key).AsTask();
        while (!read.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var blob = await read;
        model.ObserveTransfer(tier.Name, blob!.Value.Length, time.GetElapsedTime(start));
    }
}
