using KvFusion.Cache.Chunks;
using KvFusion.Cache.Codecs;
using KvFusion.Cache.Container;
using KvFusion.Cache.Fusion;
using KvFusion.Cache.Loading;
using KvFusion.Cache.Storage;
using KvFusion.Cache.Tests.Container;
using KvFusion.Cache.Tests.Support;
using KvFusion.Cache.Tests.Tiers;
using KvFusion.Cache.Tiers;
using Microsoft.Extensions.Time.Testing;
using static KvFusion.Cache.Tests.Tiers.TierTestData;

namespace KvFusion.Cache.Tests.Loading;

/// <summary>The cost model is fed by the running code: tier reads, container decodes and fusion compute.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class LoadCostObservationTests(TinyModelFixture fixture)
{
    [Fact]
    public async Task The_tier_manager_records_each_lower_tier_read_and_the_model_finds_a_throttled_tiers_rate()
    {
        var model = new LoadCostModel(new LoadCostModelOptions { MinSamples = 1 });
        var remote = new ControllableTier("remote");
        var time = new FakeTimeProvider();
        var link = new ThrottledLink(80e6, TimeSpan.FromMilliseconds(2), time);
        var options = new KvTierManagerOptions { OperationTimeout = TimeSpan.FromSeconds(10), PromoteToUpperTiers = false, CostModel = model };
        await using var manager = new KvTierManager(new HostMemoryTier(), [new ThrottledKvTier(remote, link)], options, timeProvider: time);
        var keys = new List<TierKey>();
        foreach (var (seed, tokens) in new[] { (1, 160), (2, 1600), (3, 400), (4, 1200), (5, 250), (6, 800) })
        {
            var (key, blob) = ContainerBlob(seed, tokens);
            await remote.Inner.PutAsync(key, blob);
            keys.Add(key);
        }

        Assert.Null(model.Transfer("remote"));
        foreach (var key in keys)
        {
            // The fake clock moves a millisecond at a time, the resolution a real timer gives.
            var read = manager.GetAsync(key).AsTask();
            while (!read.IsCompleted)
            {
                time.Advance(TimeSpan.FromMilliseconds(1));
                await Task.Yield();
            }

            Assert.NotNull(await read);
        }

        var estimate = model.Transfer("remote")!.Value;
        Assert.Equal(6, estimate.Samples);
        Assert.InRange(estimate.BitsPerSecond, 72e6, 88e6);
        Assert.InRange(estimate.Fixed, 0.001, 0.004);
        Assert.Null(model.Transfer("memory"));
    }

    [Fact]
    public async Task The_container_store_records_decode_time_per_codec()
    {
        var model = new LoadCostModel(new LoadCostModelOptions { MinSamples = 1 });
        var expected = new KvContainerExpectation(ContainerTestData.Model, ContainerTestData.Tokenizer, 3, 2, 8);
        var store = new ContainerKvStore(new InMemoryBlobStore(), expected, new ContainerKvStoreOptions { Codec = KvCodecSpec.Lz4, CostModel = model });
        var entry = ContainerTestData.Entry(tokens: 64);
        await store.PutAsync(entry);
        Assert.Null(model.Decode(KvCodecSpec.Lz4));
        Assert.NotNull(await store.GetAsync(entry.Key));
        Assert.Equal(1, model.Decode(KvCodecSpec.Lz4)!.Value.Samples);
        Assert.Null(model.Decode(KvCodecSpec.Raw));
    }

    [SkippableFact]
    public async Task Each_fusion_records_its_compute_time_against_the_token_layers_it_computed()
    {
        var model = new LoadCostModel(new LoadCostModelOptions { MinSamples = 1 });
        using var engine = new FusionEngine(fixture.Model, new InMemoryKvStore(), new FusionEngineOptions { CostModel = model });
        var chunk = ChunkInput.FromText("The os module provides a portable way of using operating system dependent functionality.");
        foreach (var mode in new[] { FusionMode.Full, FusionMode.Blend })
        {
            using var context = await engine.FuseAsync(new FusionRequest { Chunks = [chunk], Query = "What does os do?", Mode = mode });
        }

        Assert.Null(model.Recompute("another model"));
        var recompute = model.Recompute(fixture.Model.Fingerprint.Model)!.Value;
        // Full's prefill and blend's own pass; blend's precompute of the chunk it did not find is a prefill.
        Assert.Equal(2, recompute.Samples);
        Assert.Equal(1, model.Prefill(fixture.Model.Fingerprint.Model)!.Value.Samples);
        Assert.True(recompute.Predict(1000) > 0);
    }
}
