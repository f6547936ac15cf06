using System.Text.RegularExpressions;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// samples/SemanticKernelRag as a user runs it (<c>dotnet SemanticKernelRag.dll --short</c>) in a fresh folder: the
/// Semantic Kernel program ingests the pages, answers two questions with the retrieved paragraphs fused from their
/// caches; run again, it embeds nothing and precomputes no chunk.
/// </summary>
public sealed partial class SemanticKernelRagSampleTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(4);

    [SkippableFact]
    public async Task The_sample_in_short_mode_answers_through_the_kernel_and_a_second_run_reuses_every_chunk()
    {
        var model = SharedModels.Path("tiny-pydocs");
        var sample = RagPipelineSampleTests.SampleAssembly("SemanticKernelRag");
        using var work = new TempDirectory();

        var first = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--short", "--model", model], RunTimeout, work.Path);

        Assert.True(first.ExitCode == 0, first.Describe());
        Assert.Matches(@"Ingest: 10 pages, \d+ paragraphs: [1-9]\d* embedded, 0 already stored", first.StandardOutput);
        var firstReports = Reports(first.StandardOutput);
        Assert.Equal(2, firstReports.Count);
        Assert.All(firstReports, r => Assert.Equal(3, r.Fused));
        Assert.True(firstReports.Sum(r => r.Precomputed) > 0, first.StandardOutput);
        Assert.Contains("Done: 2 questions", first.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"Usage: \d+ input tokens \([1-9]\d* cached\), 16 output tokens", first.StandardOutput);

        var second = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--short", "--model", model], RunTimeout, work.Path);

        Assert.True(second.ExitCode == 0, second.Describe());
        Assert.Matches(@"Ingest: 10 pages, \d+ paragraphs: 0 embedded, [1-9]\d* already stored", second.StandardOutput);
        var secondReports = Reports(second.StandardOutput);
        Assert.Equal(2, secondReports.Count);
        Assert.All(secondReports, r => Assert.Equal(0, r.Precomputed));
        Assert.Equal(firstReports.Select(r => r.Reused), secondReports.Select(r => r.Reused));
    }

    [SkippableFact]
    public async Task The_sample_refuses_an_unknown_argument_by_name()
    {
        var sample = RagPipelineSampleTests.SampleAssembly("SemanticKernelRag");
        using var work = new TempDirectory();

        var run = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--questoins", "2"], RunTimeout, work.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Unknown argument '--questoins'", run.StandardError, StringComparison.Ordinal);
    }

    private static List<(int Reused, int Fused, int Precomputed)> Reports(string output) =>
        [.. ReportLine().Matches(output).Select(m => (Int(m.Groups[1]), Int(m.Groups[2]), Int(m.Groups[3])))];

    private static int Int(Group group) => int.Parse(group.Value, System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"kvfusion\.report: blend\S*: \d+ prompt tokens, (\d+) reused, \d+ recomputed; (\d+) chunks fused, (\d+) precomputed")]
    private static partial Regex ReportLine();
}
