using System.Text.RegularExpressions;

namespace KvFusion.EndToEnd.Tests;

/// <summary>
/// samples/RagPipeline as a user runs it (<c>dotnet RagPipeline.dll --short</c>) in a fresh folder: it ingests the demo's
/// pages, answers two questions in both modes and prints the tables; run again, it computes nothing.
/// </summary>
public sealed partial class RagPipelineSampleTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(4);

    [SkippableFact]
    public async Task The_sample_in_short_mode_answers_two_questions_and_a_second_run_computes_no_chunk()
    {
        var model = SharedModels.Path("tiny-pydocs");
        var sample = SampleAssembly("RagPipeline");
        using var work = new TempDirectory();

        var first = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--short", "--model", model], RunTimeout, work.Path);

        Assert.True(first.ExitCode == 0, first.Describe());
        var computed = Computed(first.StandardOutput);
        Assert.True(computed > 0, first.StandardOutput);
        Assert.Contains("Per question", first.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Mean TTFT speedup of blend over full", first.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Done: 2 questions", first.StandardOutput, StringComparison.Ordinal);

        var second = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--short", "--model", model], RunTimeout, work.Path);

        Assert.True(second.ExitCode == 0, second.Describe());
        Assert.Equal(0, Computed(second.StandardOutput));
        Assert.Contains($"{computed} reused", second.StandardOutput, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_sample_refuses_an_unknown_argument_by_name()
    {
        var sample = SampleAssembly("RagPipeline");
        using var work = new TempDirectory();

        var run = await SampleProcess.RunAsync(SampleProcess.Dotnet, [sample, "--questoins", "2"], RunTimeout, work.Path);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Unknown argument '--questoins'", run.StandardError, StringComparison.Ordinal);
    }

    /// <summary>
    /// The sample's built assembly, in the configuration this test was built in (the solution build makes it; the
    /// test project does not reference the sample).
    /// </summary>
    internal static string SampleAssembly(string name)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent?.Name ?? "Release";
        var framework = new DirectoryInfo(AppContext.BaseDirectory).Name;
        var path = RepositoryRoot.Combine("samples", name, "bin", configuration, framework, name + ".dll");
        Assert.True(File.Exists(path), $"{path} is not built: build samples/{name} (-c {configuration}) or the solution first.");
        return path;
    }

    private static int Computed(string output)
    {
        var m = IngestLine().Match(output);
        Assert.True(m.Success, $"no ingest line in:\n{output}");
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"Ingest: \d+ pages, \d+ chunks \(\d+ tokens\): (\d+) computed")]
    private static partial Regex IngestLine();
}
