using System.Globalization;
using System.Text.RegularExpressions;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// samples/MultiAgent as a user runs it: the docs agent hands its context to the coder agent by cache reference, and
/// the program prints the coder's TTFT and quality for text handoff, full reuse and share side by side.
/// </summary>
public sealed partial class MultiAgentSampleTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(4);

    [SkippableFact]
    public async Task The_coder_answers_from_the_docs_agents_cache_and_share_sits_between_text_and_full_reuse()
    {
        var docs = SharedModels.Path("tiny-pydocs");
        var sample = RagPipelineSampleTests.SampleAssembly("MultiAgent");
        using var work = new TempDirectory();

        var run = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--docs", docs, "--handoffs", "2", "--max-tokens", "8"], RunTimeout, work.Path);

        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("docs agent tiny-pydocs → coder agent tiny-pydocs-coder: recompute layers 0-3 of 6", run.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"stored its \d+-token context as [0-9a-f]{16}… and sends only that id", run.StandardOutput);
        var rows = Rows().Matches(run.StandardOutput).ToDictionary(m => m.Groups[1].Value, m => (Kl: Double(m.Groups[2]), Top1: Double(m.Groups[3])));
        Assert.Equal(["text", "full reuse", "share:0-3", "blend:0.2:gradual+share:none"], rows.Keys);

        // Text is the reference; share recomputes the profiled layers and so loses less than reusing every layer.
        Assert.Equal(0, rows["text"].Kl);
        Assert.Equal(100, rows["text"].Top1);
        Assert.InRange(rows["full reuse"].Kl, 1e-4, 10);
        Assert.InRange(rows["share:0-3"].Kl, 0, rows["full reuse"].Kl);
        Assert.InRange(rows["blend:0.2:gradual+share:none"].Kl, 0, rows["full reuse"].Kl);
    }

    [SkippableFact]
    public async Task A_profile_for_another_pair_is_refused_with_the_reason()
    {
        var docs = SharedModels.Path("tiny-pydocs");
        var sample = RagPipelineSampleTests.SampleAssembly("MultiAgent");
        using var work = new TempDirectory();

        // The coder as its own sender: the tiny pair's profile is for tiny-pydocs → tiny-pydocs-coder only.
        var run = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--docs", docs, "--coder", docs, "--handoffs", "1"], RunTimeout, work.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("profile this pair with kvfusion profile sharing", run.StandardError, StringComparison.Ordinal);
    }

    private static double Double(Group group) => double.Parse(group.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^  (text|full reuse|share:\S+|blend:\S+)\s+(\d+\.\d+)\s+(\d+\.\d) %", RegexOptions.Multiline)]
    private static partial Regex Rows();
}
