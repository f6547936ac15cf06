using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Tests.Sharing;

/// <summary>Profiling the real pair (tiny-pydocs-coder's caches used by tiny-pydocs) on a small case set.</summary>
public sealed class SharingProfilerTests : IDisposable
{
    private static readonly FusionCase[] Cases =
    [
        new(null,
            ["The json module provides an API similar to pickle for converting in-memory Python objects to a serialized representation.",
             "A list comprehension consists of brackets containing an expression followed by a for clause."],
            "The json module provides an API similar to", " pickle for converting in-memory Python objects"),
    ];

    private readonly CpuModelFixture _models = new();
    private readonly TempDirectory _dir = new();

    public void Dispose()
    {
        _models.Dispose();
        _dir.Dispose();
    }

    [SkippableFact]
    public async Task Exact_search_picks_the_cheapest_measured_set_within_the_budget_and_the_profile_round_trips()
    {
        var (sender, receiver) = (_models.Model("tiny-pydocs-coder"), _models.Tiny);
        var profiler = new SharingProfiler(sender, receiver, new SharingProfilerOptions { Budget = 0.5 });

        var profile = await profiler.ProfileAsync(Cases);

        Assert.Equal("exact", profile.Search);
        Assert.Equal(64, profile.Candidates.Count);
        var all = profile.Candidates.Single(c => c.Recompute.LayerCount == 6);
        Assert.True(all.MeanKl < 1e-6, $"recomputing every layer is the receiver's full prefill; KL {all.MeanKl}");
        Assert.True(profile.RecomputeKl <= profile.ReuseKl * 0.5);
        Assert.DoesNotContain(profile.Candidates, c => c.MeanKl <= profile.ReuseKl * 0.5 && c.Recompute.LayerCount < profile.Recompute.LayerCount);
        Assert.Equal(6, profile.LayerSensitivity.Count);
        Assert.Equal(21, profile.RangeSensitivity.Count);
        Assert.Equal(profile.ReuseKl, profile.RangeSensitivity.Single(r => r.Range == new LayerRange(0, 5)).MeanKl);

        var path = _dir.Combine("profile.json");
        profile.Save(path);
        var loaded = SharingProfile.Load(path);
        Assert.Equal(profile.Recompute, loaded.Recompute);
        Assert.Equal(profile.Sender, loaded.Sender);
        Assert.Equal(profile.LayerSensitivity.Count, loaded.LayerSensitivity.Count);
        loaded.EnsureFor(sender.Fingerprint, receiver.Fingerprint);
        var other = Assert.Throws<SharingProfileException>(() => loaded.EnsureFor(receiver.Fingerprint, sender.Fingerprint));
        Assert.Contains("tiny-pydocs-coder", other.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Greedy_search_grows_the_recompute_set_until_the_budget_is_met()
    {
        var profiler = new SharingProfiler(_models.Model("tiny-pydocs-coder"), _models.Tiny, new SharingProfilerOptions { Budget = 0.5, ExactMaxLayers = 0 });

        var profile = await profiler.ProfileAsync(Cases);

        Assert.Equal("greedy", profile.Search);
        Assert.True(profile.RecomputeKl <= profile.ReuseKl * 0.5);
        Assert.True(profile.Candidates.Count < 64);
    }

    [SkippableFact]
    public void Another_family_or_a_bad_budget_is_refused()
    {
        var error = Assert.Throws<FusionException>(() => new SharingProfiler(_models.Model("zoo/mistral"), _models.Tiny));
        Assert.Equal(FusionError.IncompatibleModels, error.Error);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SharingProfiler(_models.Tiny, _models.Tiny, new SharingProfilerOptions { Budget = 0 }));
    }

    [Fact]
    public void A_file_that_is_not_a_profile_is_refused_naming_it()
    {
        var path = _dir.Combine("bad.json");
        File.WriteAllText(path, """{"format": 1, "sender": {}}""");

        var error = Assert.Throws<SharingProfileException>(() => SharingProfile.Load(path));

        Assert.Contains("bad.json is not a sharing profile", error.Message, StringComparison.Ordinal);
        Assert.Throws<SharingProfileException>(() => SharingProfile.Load(_dir.Combine("missing.json")));
    }
}
