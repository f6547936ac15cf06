using KvFusion.Cache.Storage;
using KvFusion.Cache.Tiers;
using StackExchange.Redis;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>The tier against real servers: a standalone Redis and a three-node Redis Cluster.</summary>
public sealed class RedisTierTests
{
    public static TheoryData<string> Kinds => RedisTestServers.Kinds;

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_value_round_trips_is_replaced_and_removed(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 4096 });
        var tier = scope.Tier;
        var key = Keys.Chunk(Keys.TenantA, 1);
        var first = Keys.Random(10_000, 1);
        var second = Keys.Random(5_000, 2);

        Assert.Null(await tier.GetAsync(key));
        Assert.False(await tier.ContainsAsync(key));

        await tier.PutAsync(key, first);
        Assert.Equal(first, (await tier.GetAsync(key))!.Value.ToArray());
        Assert.True(await tier.ContainsAsync(key));
        var firstPieces = await scope.PieceKeysAsync(key);
        Assert.Equal(3, firstPieces.Length);

        await tier.PutAsync(key, second);
        Assert.Equal(second, (await tier.GetAsync(key))!.Value.ToArray());
        Assert.Equal(2, (await scope.PieceKeysAsync(key)).Length);
        foreach (var old in firstPieces)
        {
            Assert.False(await scope.Db.KeyExistsAsync(old), $"the replaced generation's piece {old} is still there");
        }

        Assert.True(await tier.RemoveAsync(key));
        Assert.Null(await tier.GetAsync(key));
        Assert.False(await tier.ContainsAsync(key));
        Assert.False(await tier.RemoveAsync(key));
        Assert.Empty(await scope.AllKeysAsync());
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task An_empty_value_and_a_prefix_block_round_trip(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        var empty = Keys.Chunk(Keys.TenantA, 2, "variant with spaces/and{braces}");
        var block = Keys.Prefix(Keys.TenantA, 3);

        await scope.Tier.PutAsync(empty, ReadOnlyMemory<byte>.Empty);
        await scope.Tier.PutAsync(block, new byte[] { 1, 2, 3 });

        Assert.Equal(0, (await scope.Tier.GetAsync(empty))!.Value.Length);
        Assert.True(await scope.Tier.ContainsAsync(empty));
        Assert.Equal(new byte[] { 1, 2, 3 }, (await scope.Tier.GetAsync(block))!.Value.ToArray());
        Assert.DoesNotContain(await scope.AllKeysAsync(), k => k.Contains('{', StringComparison.Ordinal) || k.Contains(' ', StringComparison.Ordinal));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Listing_finds_every_entry_on_every_node_by_namespace(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        var inA = Enumerable.Range(0, 40).Select(i => Keys.Chunk(Keys.TenantA, i, i % 2 == 0 ? "raw" : "cachegen:l2")).ToList();
        inA.Add(Keys.Prefix(Keys.TenantA, 99));
        var inB = Enumerable.Range(0, 5).Select(i => Keys.Chunk(Keys.TenantB, i)).ToList();
        var otherModel = Keys.Chunk(Keys.TenantAOtherModel, 7);
        foreach (var key in inA.Concat(inB).Append(otherModel))
        {
            await scope.Tier.PutAsync(key, Keys.Random(100, key.GetHashCode()));
        }

        // Something under the prefix that the tier did not write is not listed.
        await scope.Db.StringSetAsync(scope.Prefix + ":m:not-a-key", "x");

        Assert.Equal(inA.ToHashSet(), await ToSetAsync(scope.Tier.ListAsync(Keys.TenantA)));
        Assert.Equal(inB.ToHashSet(), await ToSetAsync(scope.Tier.ListAsync(Keys.TenantB)));
        Assert.Equal([otherModel], await ToSetAsync(scope.Tier.ListAsync(Keys.TenantAOtherModel)));
        Assert.Equal(inA.Concat(inB).Append(otherModel).ToHashSet(), await ToSetAsync(scope.Tier.ListAsync()));
        if (kind == RedisTestServers.Cluster)
        {
            var nodes = (await scope.KeysByNodeAsync(":m:")).Count(n => n.Value.Count > 0);
            Assert.True(nodes >= 2, "the manifests all landed on one node, so the listing did not show it scans every node");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_large_value_is_cut_into_pieces_that_spread_over_the_cluster(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 256 * 1024 });
        var key = Keys.Chunk(Keys.TenantA, 10);
        var value = Keys.Random(32 * 1024 * 1024, 10);

        await scope.Tier.PutAsync(key, value);
        var back = await scope.Tier.GetAsync(key);
        Assert.True(value.AsSpan().SequenceEqual(back!.Value.Span));

        var pieces = await scope.PieceKeysAsync(key);
        Assert.Equal(128, pieces.Length);
        foreach (var piece in pieces)
        {
            Assert.Equal(256 * 1024, await scope.Db.StringLengthAsync(piece));
        }

        if (kind == RedisTestServers.Cluster)
        {
            // Where the pieces are, as each node's own SCAN reports them.
            var byNode = await scope.KeysByNodeAsync(":p:");
            Assert.Equal(pieces.ToHashSet(), byNode.Values.SelectMany(k => k).ToHashSet());
            var nodes = byNode.Count(n => n.Value.Count > 0);
            Assert.True(nodes >= 2, $"the 128 pieces landed on {nodes} node(s)");
            var slots = pieces.Select(p => scope.Direct.HashSlot(p)).Distinct().Count();
            Assert.True(slots > 100, $"the 128 pieces share hash slots ({slots} distinct): they must not share a hash tag");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Another_tenant_or_model_sees_an_entry_as_absent(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        var mine = Keys.Chunk(Keys.TenantA, 20);
        await scope.Tier.PutAsync(mine, Keys.Random(3000, 20));

        foreach (var ns in new[] { Keys.TenantB, Keys.TenantAOtherModel })
        {
            var theirs = new TierKey(ns, mine.Key);
            Assert.Null(await scope.Tier.GetAsync(theirs));
            Assert.False(await scope.Tier.ContainsAsync(theirs));
            Assert.False(await scope.Tier.RemoveAsync(theirs));
            Assert.Empty(await ToSetAsync(scope.Tier.ListAsync(ns)));
        }

        // What another tenant reads is exactly what a key never written reads.
        Assert.Null(await scope.Tier.GetAsync(Keys.Chunk(Keys.TenantB, 21)));
        Assert.NotNull(await scope.Tier.GetAsync(mine));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_short_time_to_live_expires_the_entry_and_its_pieces_outlive_the_manifest(string kind)
    {
        var ttl = TimeSpan.FromSeconds(2);
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024, TimeToLive = ttl });
        var key = Keys.Chunk(Keys.TenantA, 30);
        await scope.Tier.PutAsync(key, Keys.Random(5000, 30));

        var manifestTtl = await scope.Db.KeyTimeToLiveAsync(scope.ManifestKey(key));
        Assert.NotNull(manifestTtl);
        Assert.True(manifestTtl <= ttl, $"the manifest lives {manifestTtl}, longer than the TTL {ttl}");
        foreach (var piece in await scope.PieceKeysAsync(key))
        {
            var pieceTtl = await scope.Db.KeyTimeToLiveAsync(piece);
            Assert.True(pieceTtl > ttl + scope.Tier.Options.OperationTimeout, $"piece {piece} lives {pieceTtl}, not past the manifest's expiry plus grace");
        }

        await WaitUntilAsync(async () => await scope.Tier.GetAsync(key) is null, "the entry to expire");
        Assert.False(await scope.Tier.ContainsAsync(key));
        Assert.Empty(await ToSetAsync(scope.Tier.ListAsync(Keys.TenantA)));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_manifest_whose_piece_is_gone_is_a_miss_and_is_dropped(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024 });
        var key = Keys.Chunk(Keys.TenantA, 40);
        await scope.Tier.PutAsync(key, Keys.Random(8000, 40));
        var pieces = await scope.PieceKeysAsync(key);

        Assert.True(await scope.Db.KeyDeleteAsync(pieces[5]));

        Assert.False(await scope.Tier.ContainsAsync(key));
        Assert.Null(await scope.Tier.GetAsync(key));
        Assert.False(await scope.Db.KeyExistsAsync(scope.ManifestKey(key)), "the incomplete entry's manifest was kept");
        foreach (var piece in pieces)
        {
            Assert.False(await scope.Db.KeyExistsAsync(piece), $"the incomplete entry's piece {piece} was kept");
        }

        Assert.Equal(1, (await scope.Tier.GetStatisticsAsync()).Expirations);
        Assert.Null(await scope.Tier.GetAsync(key));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Reads_during_overwrites_see_one_whole_generation_or_nothing(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024 });
        var key = Keys.Chunk(Keys.TenantA, 50);
        var a = Keys.Random(64 * 1024, 51);
        var b = Keys.Random(48 * 1024 + 17, 52);
        await scope.Tier.PutAsync(key, a);

        var writer = Task.Run(async () =>
        {
            for (var i = 0; i < 150; i++)
            {
                await scope.Tier.PutAsync(key, i % 2 == 0 ? b : a);
            }
        });
        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            var (whole, none) = (0, 0);
            while (!writer.IsCompleted)
            {
                var got = await scope.Tier.GetAsync(key);
                if (got is not { } bytes)
                {
                    none++;
                    continue;
                }

                Assert.True(bytes.Span.SequenceEqual(a) || bytes.Span.SequenceEqual(b), $"a read returned {bytes.Length} bytes that are neither value");
                whole++;
            }

            return (whole, none);
        })).ToArray();

        await writer;
        var results = await Task.WhenAll(readers);
        Assert.True(results.Sum(r => r.whole) > 0, "no read completed during the overwrites");
        var last = await scope.Tier.GetAsync(key);
        Assert.Equal(a, last!.Value.ToArray());
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Bytes_changed_in_a_piece_are_a_blob_error(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024 });
        var key = Keys.Chunk(Keys.TenantA, 60);
        await scope.Tier.PutAsync(key, Keys.Random(5000, 60));
        var pieces = await scope.PieceKeysAsync(key);

        await scope.Db.StringSetRangeAsync(pieces[2], 100, "XYZ");
        var hash = await Assert.ThrowsAsync<KvBlobException>(async () => await scope.Tier.GetAsync(key));
        Assert.Contains("hash", hash.Message, StringComparison.Ordinal);

        await scope.Db.StringAppendAsync(pieces[1], "more");
        var length = await Assert.ThrowsAsync<KvBlobException>(async () => await scope.Tier.GetAsync(key));
        Assert.Contains("piece 1", length.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_garbage_manifest_is_a_blob_error(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        var key = Keys.Chunk(Keys.TenantA, 70);
        await scope.Tier.PutAsync(key, Keys.Random(5000, 70));
        var manifestKey = scope.ManifestKey(key);
        var manifest = (byte[])(await scope.Db.StringGetAsync(manifestKey))!;

        await scope.Db.StringSetAsync(manifestKey, "garbage");
        await Assert.ThrowsAsync<KvBlobException>(async () => await scope.Tier.GetAsync(key));

        manifest[30] ^= 0x40; // total length, under the manifest's own checksum
        await scope.Db.StringSetAsync(manifestKey, manifest);
        var e = await Assert.ThrowsAsync<KvBlobException>(async () => await scope.Tier.GetAsync(key));
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);

        await scope.Db.KeyDeleteAsync(manifestKey);
        await scope.Db.HashSetAsync(manifestKey, "f", "v");
        await Assert.ThrowsAsync<KvBlobException>(async () => await scope.Tier.GetAsync(key));

        // Removing the corrupt entry (what the tier manager does) clears it.
        await scope.Db.KeyDeleteAsync(manifestKey);
        await scope.Db.StringSetAsync(manifestKey, "garbage");
        Assert.True(await scope.Tier.RemoveAsync(key));
        Assert.Null(await scope.Tier.GetAsync(key));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Statistics_count_entries_bytes_and_operations(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind, o => o with { PieceBytes = 1024, MaxValueBytes = 10_000 });
        for (var i = 0; i < 3; i++)
        {
            await scope.Tier.PutAsync(Keys.Chunk(Keys.TenantA, 80 + i), Keys.Random(1000 * (i + 1), i));
        }

        await scope.Tier.PutAsync(Keys.Chunk(Keys.TenantA, 90), Keys.Random(10_001, 9)); // refused: over MaxValueBytes
        Assert.NotNull(await scope.Tier.GetAsync(Keys.Chunk(Keys.TenantA, 80)));
        Assert.Null(await scope.Tier.GetAsync(Keys.Chunk(Keys.TenantA, 90)));

        var stats = await scope.Tier.GetStatisticsAsync();
        Assert.Equal("redis", stats.Tier);
        Assert.Equal(3, stats.Entries);
        Assert.Equal(6000, stats.Bytes);
        Assert.Equal(1, stats.Hits);
        Assert.Equal(1, stats.Misses);
        Assert.Equal(3, stats.Puts);
        Assert.Equal(1, stats.Rejections);
        await scope.Tier.ProbeAsync();
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task A_cancelled_operation_throws_operation_cancelled(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await scope.Tier.GetAsync(Keys.Chunk(Keys.TenantA, 1), cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await scope.Tier.PutAsync(Keys.Chunk(Keys.TenantA, 1), new byte[10], cancelled.Token));
    }

    [SkippableTheory]
    [MemberData(nameof(Kinds))]
    public async Task Two_tiers_on_one_server_share_entries_under_one_prefix(string kind)
    {
        await using var scope = await TierScope.CreateAsync(kind);
        await using var replica = await RedisTier.ConnectAsync(scope.Tier.Options);
        var key = Keys.Chunk(Keys.TenantA, 100);
        await scope.Tier.PutAsync(key, new byte[] { 9, 8, 7 });
        Assert.Equal(new byte[] { 9, 8, 7 }, (await replica.GetAsync(key))!.Value.ToArray());
        Assert.True(await replica.RemoveAsync(key));
        Assert.Null(await scope.Tier.GetAsync(key));
    }

    internal static async Task<HashSet<TierKey>> ToSetAsync(IAsyncEnumerable<TierKey> keys)
    {
        var set = new HashSet<TierKey>();
        await foreach (var k in keys)
        {
            set.Add(k);
        }

        return set;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails after a generous deadline (not a timing assertion).</summary>
    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }
}
