using System.Text.Json;

namespace KvFusion.Cli.Tests.Commands;

/// <summary><c>bench batch</c>: batched decode steps against single-sequence decode, in one run, as a table and JSON.</summary>
[Collection(ConsoleCommands.Name)]
public sealed class BenchBatchCommandTests
{
    [SkippableFact]
    public async Task Batched_decode_is_measured_against_solo_decode_in_the_same_run()
    {
        var model = SharedModels.Path("tiny-pydocs");
        using var work = new TempDirectory();
        var json = work.Combine("batch.json");

        var run = await Kvfusion.RunInAsync(work.Path, null, "bench", "batch", "--model", model, "--sequences", "1,3", "--context", "8", "--steps", "3", "--json", json);

        Assert.True(run.ExitCode == 0, run.StandardError);
        Assert.Contains("x single-sequence decode", run.StandardOutput, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
        var root = doc.RootElement;
        Assert.Equal(8, root.GetProperty("context_tokens").GetInt32());
        Assert.Equal(1, root.GetProperty("solo").GetProperty("ratio_to_solo").GetDouble());
        var batches = root.GetProperty("batches").EnumerateArray().ToList();
        Assert.Equal([1, 3], batches.Select(b => b.GetProperty("sequences").GetInt32()).ToList());
        Assert.All(batches, b =>
        {
            Assert.True(b.GetProperty("decode_tokens_per_s").GetDouble() > 0);
            Assert.True(b.GetProperty("step_ms_max").GetDouble() >= b.GetProperty("step_ms_p50").GetDouble());
        });
    }

    [Theory]
    [InlineData("--sequences: '0' is not a positive integer.", "--sequences", "0")]
    [InlineData("--steps must be from 1 to 4096, got 0.", "--steps", "0")]
    [InlineData("--context must be at least 1, got 0.", "--context", "0")]
    public async Task A_bad_option_fails_with_one_line_that_names_it(string message, params string[] options)
    {
        using var work = new TempDirectory();

        var run = await Kvfusion.RunInAsync(work.Path, null, ["bench", "batch", .. options]);

        run.AssertFailedWith(message);
    }
}
