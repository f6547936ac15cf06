using System.Text.Json;

namespace KvFusion.Cli.Tests.Commands;

/// <summary><c>bench loader</c>: the loading controller against each fixed choice over a throttled tier, as a table, JSON and PNG.</summary>
[Collection(ConsoleCommands.Name)]
public sealed class BenchLoaderCommandTests
{
    [SkippableFact]
    public async Task The_controller_and_every_fixed_choice_are_measured_at_each_rate_in_one_run()
    {
        var model = SharedModels.Path("tiny-pydocs");
        var cases = RepositoryRoot.Combine("tests", "data", "fusion-cases-mini.jsonl");
        using var work = new TempDirectory();
        var json = work.Combine("loader.json");
        var png = work.Combine("loader.png");

        var run = await Kvfusion.RunInAsync(work.Path, null, "bench", "loader", "--model", model, "--cases", cases, "--limit", "1", "--gbits", "0.5,5", "--requests", "2", "--json", json, "--png", png);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Contains("Gbit/s: controller TTFT", run.StandardOutput, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("deadline_ms").GetDouble() > 0);
        var points = root.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(8, points.Count);
        foreach (var gbit in new[] { 0.5, 5.0 })
        {
            var at = points.Where(p => p.GetProperty("gbit_s").GetDouble() == gbit).Select(p => p.GetProperty("policy").GetString()).ToList();
            Assert.Equal(["controller", "raw", "smallest", "text"], at);
        }

        Assert.All(points, p =>
        {
            Assert.True(p.GetProperty("ttft_ms").GetDouble() > 0);
            Assert.True(p.GetProperty("mean_kl").GetDouble() >= 0);
            Assert.InRange(p.GetProperty("deadline_met").GetDouble(), 0, 1);
        });
        Assert.Equal(2, root.GetProperty("targets").GetArrayLength());
        Assert.True(new FileInfo(png).Length > 10_000);
    }

    [SkippableFact]
    public async Task Through_a_real_redis_behind_the_throttling_proxy_every_policy_is_measured()
    {
        var redis = Environment.GetEnvironmentVariable("KVF_TEST_REDIS");
        Skip.If(string.IsNullOrEmpty(redis), "KVF_TEST_REDIS is not set (scripts/ci/redis-up.sh starts a Redis and prints it)");
        var model = SharedModels.Path("tiny-pydocs");
        var cases = RepositoryRoot.Combine("tests", "data", "fusion-cases-mini.jsonl");
        using var work = new TempDirectory();
        var json = work.Combine("loader.json");

        var run = await Kvfusion.RunInAsync(work.Path, null, "bench", "loader", "--model", model, "--cases", cases, "--limit", "1", "--gbits", "1", "--requests", "2", "--redis", redis!, "--json", json);

        Assert.True(run.ExitCode == 0, run.StandardError);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        Assert.Equal("redis-through-proxy", doc.RootElement.GetProperty("remote_tier").GetString());
        Assert.Equal(4, doc.RootElement.GetProperty("points").GetArrayLength());
    }

    [Theory]
    [InlineData("--gbits: 'fast' is not a rate in Gbit/s above 0.", "--gbits", "fast")]
    [InlineData("--gbits: '0' is not a rate in Gbit/s above 0.", "--gbits", "0")]
    [InlineData("--requests must be from 1 to 10000, got 0.", "--requests", "0")]
    public async Task A_bad_option_fails_with_one_line_that_names_it(string message, params string[] options)
    {
        using var work = new TempDirectory();

        var run = await Kvfusion.RunInAsync(work.Path, null, ["bench", "loader", .. options]);

        run.AssertFailedWith(message);
    }
}
