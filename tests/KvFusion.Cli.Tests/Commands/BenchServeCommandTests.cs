using System.Text.Json;

namespace KvFusion.Cli.Tests.Commands;

/// <summary><c>bench serve</c> as a user runs it: the real server in the process, a small load, the report it writes.</summary>
[Collection(ConsoleCommands.Name)]
public sealed class BenchServeCommandTests
{
    [SkippableFact]
    public async Task A_small_load_test_serves_every_request_and_writes_one_run_per_scheduler_clients_and_mode()
    {
        var model = SharedModels.Path("tiny-pydocs");
        var corpus = SharedData.Path("corpus", "pydocs.tar.xz");
        using var work = new TempDirectory();
        var json = work.Combine("serve.json");

        var run = await Kvfusion.RunInAsync(work.Path, null,
            "bench", "serve", "--model", model, "--corpus", corpus, "--clients", "1,2", "--requests", "4", "--max-tokens", "2", "--chunk-tokens", "64", "--json", json);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.True(File.Exists(work.Combine("serve.png")), "the plot goes next to the JSON");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = doc.RootElement;
        Assert.Equal(64, root.GetProperty("chunk_tokens").GetInt32());
        Assert.Equal(2, root.GetProperty("max_tokens").GetInt32());
        Assert.Equal(Environment.ProcessorCount, root.GetProperty("machine_cores").GetInt32());
        Assert.Equal("tiny-pydocs", root.GetProperty("model").GetString());
        var runs = root.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(
            [
                ("queue", 1, "full"), ("queue", 1, "blend:0.15"), ("queue", 2, "full"), ("queue", 2, "blend:0.15"),
                ("batching", 1, "full"), ("batching", 1, "blend:0.15"), ("batching", 2, "full"), ("batching", 2, "blend:0.15"),
            ],
            runs.Select(r => (r.GetProperty("scheduler").GetString()!, r.GetProperty("clients").GetInt32(), r.GetProperty("mode").GetString()!)).ToList());
        Assert.Equal(["queue", "batching"], root.GetProperty("schedulers").EnumerateArray().Select(e => e.GetString()!).ToList());
        Assert.Equal(1, root.GetProperty("queue_max_active").GetInt32());
        foreach (var r in runs)
        {
            Assert.Equal(4, r.GetProperty("requests").GetInt32());
            Assert.Equal(0, r.GetProperty("errors").GetInt32());
            Assert.True(r.GetProperty("ttft_p50_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("ttft_p99_ms").GetDouble() >= r.GetProperty("ttft_p50_ms").GetDouble());
            Assert.True(r.GetProperty("server_ttft_p50_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("output_tokens_per_s").GetDouble() > 0);
            Assert.InRange(r.GetProperty("completion_tokens").GetInt64(), 1, 8);
            Assert.True(r.TryGetProperty("tpot_p50_ms", out var tpot) && (tpot.ValueKind == JsonValueKind.Null || tpot.GetDouble() > 0));
        }

        // Batching runs carry their ratio to the queue's run of the same clients and mode.
        Assert.All(runs.Where(r => r.GetProperty("scheduler").GetString() == "batching"), r =>
        {
            Assert.True(r.GetProperty("ttft_p99_ratio_batching_to_queue").GetDouble() > 0);
            Assert.True(r.GetProperty("output_tokens_per_s_ratio_batching_to_queue").GetDouble() > 0);
        });

        // The ratio to the full-prefill baseline of the same client count is reported on the blend runs.
        Assert.All(runs.Where(r => r.GetProperty("mode").GetString() != "full"), r => Assert.True(r.GetProperty("ttft_p50_ratio_full_to_mode").GetDouble() > 0));
        Assert.Contains("blend:0.15", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("TTFT p99", run.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("TPOT", run.StandardOutput, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_load_test_bounded_by_duration_reports_it_and_serves_every_request()
    {
        var model = SharedModels.Path("tiny-pydocs");
        var corpus = SharedData.Path("corpus", "pydocs.tar.xz");
        using var work = new TempDirectory();
        var json = work.Combine("serve.json");

        var run = await Kvfusion.RunInAsync(work.Path, null,
            "bench", "serve", "--model", model, "--corpus", corpus, "--clients", "2", "--duration", "1", "--max-tokens", "2", "--chunk-tokens", "64", "--scheduler", "batching", "--json", json, "--plot", work.Combine("plot.png"));

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.True(File.Exists(work.Combine("plot.png")));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        Assert.Equal(1, doc.RootElement.GetProperty("duration_s").GetDouble());
        Assert.False(doc.RootElement.TryGetProperty("requests_per_run", out _));
        var runs = doc.RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r =>
        {
            Assert.True(r.GetProperty("requests").GetInt32() >= 2, "each of the 2 clients sends at least one request");
            Assert.Equal(0, r.GetProperty("errors").GetInt32());
            Assert.False(r.GetProperty("capped").GetBoolean());
        });
    }

    [Theory]
    [InlineData("--clients: '0' is not a positive integer.", "--clients", "0")]
    [InlineData("--clients: 'x' is not a positive integer.", "--clients", "x")]
    [InlineData("--clients: '0' is not a positive integer.", "--clients", "1,0")]
    [InlineData("--requests must be at least 1, got 0.", "--requests", "0")]
    [InlineData("--requests and --duration both bound a run: give one of them.", "--requests", "4", "--duration", "5")]
    [InlineData("--duration must be more than 0 and at most 600 seconds, got 0.", "--duration", "0")]
    [InlineData("--max-tokens must be from 1 to 2048, got 0.", "--max-tokens", "0")]
    [InlineData("--scheduler takes queue and/or batching, each once, comma-separated; got 'fifo'.", "--scheduler", "fifo")]
    [InlineData("--scheduler takes queue and/or batching, each once, comma-separated; got 'queue,queue'.", "--scheduler", "queue,queue")]
    [InlineData("--queue-active must be from 1 to 1024, got 0.", "--queue-active", "0")]
    public async Task A_bad_option_fails_with_one_line_that_names_it(string message, params string[] options)
    {
        // Checked before the model, the corpus or the server are touched: no ../shared needed.
        using var work = new TempDirectory();

        var run = await Kvfusion.RunInAsync(work.Path, null, ["bench", "serve", .. options]);

        run.AssertFailedWith(message);
        Assert.Empty(Directory.GetFiles(work.Path));
    }
}
