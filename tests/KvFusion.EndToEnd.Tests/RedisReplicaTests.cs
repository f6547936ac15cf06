using System.Net;
using KvFusion.Client.Contracts;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// Two <c>kvfusion serve</c> replicas over one real Redis (standalone, and the three-node cluster when CI has one):
/// a chunk precomputed through one replica is served by the other from the shared tier, not computed again.
/// </summary>
public sealed class RedisReplicaTests
{
    private static readonly TimeSpan WriteBehind = TimeSpan.FromSeconds(20);

    [SkippableFact]
    public async Task A_chunk_precomputed_on_one_replica_is_fused_by_the_other_from_a_standalone_redis()
    {
        _ = SharedModels.Path("tiny-pydocs");
        if (Environment.GetEnvironmentVariable("KVF_TEST_REDIS") is { Length: > 0 } address)
        {
            Skip.IfNot(await RedisServerProcess.AnswersPingAsync(address, TimeSpan.FromSeconds(2)), $"KVF_TEST_REDIS: no Redis answers at {address}");
            await ChunkCrossesReplicasAsync("redis://" + address);
        }
        else
        {
            // RedisServerProcess skips, with the reason, when redis-server is not installed.
            await using var redis = await RedisServerProcess.StartNewAsync();
            await ChunkCrossesReplicasAsync("redis://" + redis.Address);
        }
    }

    [SkippableFact]
    public async Task A_chunk_precomputed_on_one_replica_is_fused_by_the_other_from_a_redis_cluster()
    {
        var cluster = Environment.GetEnvironmentVariable("KVF_TEST_REDIS_CLUSTER");
        Skip.If(string.IsNullOrEmpty(cluster), "KVF_TEST_REDIS_CLUSTER is not set (scripts/ci/redis-up.sh starts a three-node cluster and prints it)");
        _ = SharedModels.Path("tiny-pydocs");
        var first = cluster.Split(',')[0];
        Skip.IfNot(
            (await RedisServerProcess.SendAsync(first, "CLUSTER INFO", TimeSpan.FromSeconds(2)))?.Contains("cluster_state:ok", StringComparison.Ordinal) == true,
            $"KVF_TEST_REDIS_CLUSTER: no Redis Cluster in cluster_state:ok answers at {first}");

        await ChunkCrossesReplicasAsync("redis://" + cluster);
    }

    private static async Task ChunkCrossesReplicasAsync(string store)
    {
        // A key prefix of this run's own: a shared server (CI's) keeps other runs' entries, and is never flushed.
        var environment = new Dictionary<string, string> { ["Storage__Redis__KeyPrefix"] = "e2e-" + Guid.NewGuid().ToString("N")[..12] };
        await using var a = await ServeProcess.StartAsync(store, environment);
        await using var b = await ServeProcess.StartAsync(store, environment);
        using var httpA = a.CreateHttpClient();
        using var httpB = b.CreateHttpClient();

        var chunk = await Http.CreateChunkAsync(httpA, Http.UniqueText("Replicas share a store."));
        Assert.True(chunk.Created);
        try
        {
            var seen = await Http.WaitForChunkAsync(httpB, chunk.Id, WriteBehind);
            Assert.Equal(chunk.Tokens, seen.Tokens);

            var completion = await Http.ChatAsync(httpB, new ChatCompletionRequest
            {
                Messages = [new ChatMessage { Role = "user", Content = "What does the function return?" }],
                MaxTokens = 4,
                Temperature = 0,
                Kvfusion = new FusionOptions { Chunks = [chunk.Id], Mode = "blend" },
            });

            Assert.Equal(0, completion.Kvfusion.ChunksPrecomputed);
            Assert.Equal(chunk.Tokens, completion.Usage.PromptTokensDetails.CachedTokens);
        }
        finally
        {
            // Leave the shared server as it was found: the delete reaches every tier, Redis included.
            using var deleted = await httpA.DeleteAsync(new Uri($"v1/chunks/{chunk.Id}", UriKind.Relative));
            Assert.True(deleted.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotFound, $"DELETE: {(int)deleted.StatusCode}");
        }
    }
}
