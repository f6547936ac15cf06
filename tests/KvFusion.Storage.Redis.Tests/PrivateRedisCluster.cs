using System.Diagnostics;

namespace KvFusion.Storage.Redis.Tests;

/// <summary>
/// A three-node Redis Cluster of this test's own (private <see cref="RedisServerProcess"/>es, no replicas), so a node
/// can be killed and restarted without disturbing the shared servers. A restarted node rejoins with its slots from
/// its nodes.conf (its data is gone: no persistence).
/// </summary>
internal sealed class PrivateRedisCluster : IAsyncDisposable
{
    private PrivateRedisCluster(RedisServerProcess[] nodes)
    {
        Nodes = nodes;
    }

    public IReadOnlyList<RedisServerProcess> Nodes { get; }

    public string Configuration => string.Join(',', Nodes.Select(n => n.Address));

    public static async Task<PrivateRedisCluster> StartAsync()
    {
        var cli = Path.Combine(Path.GetDirectoryName(RedisServerProcess.Executable ?? string.Empty) ?? string.Empty, "redis-cli");
        Skip.If(RedisServerProcess.Executable is null || !File.Exists(cli), "redis-server and redis-cli are not installed (Debian: apt-get install redis-server)");
        var nodes = new List<RedisServerProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                nodes.Add(await RedisServerProcess.StartNewAsync(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]));
            }

            var create = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "--cluster", "create" }.Concat(nodes.Select(n => n.Address)).Concat(["--cluster-replicas", "0", "--cluster-yes"]))
            {
                create.ArgumentList.Add(arg);
            }

            using (var process = Process.Start(create)!)
            {
                var output = process.StandardOutput.ReadToEndAsync();
                var errors = process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                Assert.True(process.ExitCode == 0, $"redis-cli --cluster create failed: {await output}{await errors}");
            }

            var cluster = new PrivateRedisCluster([.. nodes]);
            await cluster.WaitHealthyAsync();
            return cluster;
        }
        catch
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Waits until every node reports cluster_state:ok.</summary>
    public Task WaitHealthyAsync() => RedisTierTests.WaitUntilAsync(async () =>
    {
        foreach (var node in Nodes)
        {
            if ((await RedisServerProcess.SendAsync(node.Address, "CLUSTER INFO", TimeSpan.FromSeconds(2)))?.Contains("cluster_state:ok", StringComparison.Ordinal) != true)
            {
                return false;
            }
        }

        return true;
    }, "the private cluster to reach cluster_state:ok");

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.DisposeAsync();
        }
    }
}
