using KvFusion.Cache.Tiers;
using KvFusion.Diagnostics.Benchmarks;

namespace KvFusion.Diagnostics.Tests.Benchmarks;

public sealed class EvictionTraceBenchmarkTests
{
    private static readonly EvictionTraceOptions Small = new() { Entries = 500, Accesses = 20_000, BudgetPercents = [10] };

    [Fact]
    public void Cost_aware_eviction_saves_more_recompute_than_lru_on_the_skewed_trace()
    {
        var report = EvictionTraceBenchmark.Run(Small);
        var costAware = report.Rows.Single(r => r.Policy == HostMemoryEvictionPolicy.CostAware);
        var lru = report.Rows.Single(r => r.Policy == HostMemoryEvictionPolicy.Lru);
        Assert.True(costAware.CostSaved > lru.CostSaved, $"cost-aware {costAware.CostSaved:P1}, LRU {lru.CostSaved:P1}");
        Assert.InRange(lru.HitRate, 0.05, 0.95);
        Assert.True(costAware.Evictions > 0 && lru.Evictions > 0);
    }

    [Fact]
    public void The_same_seed_gives_the_same_report()
    {
        var a = EvictionTraceBenchmark.Run(Small);
        var b = EvictionTraceBenchmark.Run(Small);
        Assert.Equal(a.Rows, b.Rows);
    }

    [Fact]
    public void A_bad_setting_is_refused_by_name() =>
        Assert.Contains("ZipfExponent", Assert.Throws<ArgumentException>(() => EvictionTraceBenchmark.Run(Small with { ZipfExponent = 0 })).Message, StringComparison.Ordinal);
}
