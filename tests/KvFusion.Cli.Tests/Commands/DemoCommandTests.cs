using System.Text.Json;
using System.Text.RegularExpressions;

namespace KvFusion.Cli.Tests.Commands;

/// <summary>
/// <c>kvfusion demo</c> as a user runs it, in a fresh folder (the embedded store under ./data): the first run ingests
/// and answers, a second run over the same folder computes nothing and embeds nothing.
/// </summary>
[Collection(ConsoleCommands.Name)]
public sealed partial class DemoCommandTests
{
    [SkippableFact]
    public async Task The_demo_answers_with_both_modes_and_a_second_run_reuses_every_chunk_the_first_stored()
    {
        using var work = new TempDirectory();
        string[] args = ["demo", "--model", SharedModels.Path("tiny-pydocs"), "--questions", "2", "--top", "2", "--max-tokens", "6", "--json", "demo.json", "--plot", "demo.png"];

        var first = await Kvfusion.RunInAsync(work.Path, null, args);

        Assert.True(first.ExitCode == 0, first.StandardError);
        var (chunks, computed, reused) = Ingest(first.StandardOutput);
        Assert.True(chunks > 10, first.StandardOutput);
        Assert.Equal(chunks, computed);
        Assert.Equal(0, reused);
        Assert.Contains("Mean TTFT speedup of blend over full", first.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("answer (full)", first.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("precompute KV", first.StandardError, StringComparison.Ordinal);
        Assert.True(Directory.Exists(work.Combine("data", "vectors")), "no vector records under ./data/vectors");
        Assert.True(new FileInfo(work.Combine("demo.png")).Length > 0, "no chart written");
        using (var json = JsonDocument.Parse(await File.ReadAllTextAsync(work.Combine("demo.json"))))
        {
            Assert.Equal(2, json.RootElement.GetProperty("questions").GetArrayLength());
            Assert.Equal(chunks, json.RootElement.GetProperty("ingest").GetProperty("chunks_computed").GetInt32());
        }

        var second = await Kvfusion.RunInAsync(work.Path, null, args);

        Assert.True(second.ExitCode == 0, second.StandardError);
        var (chunksAgain, computedAgain, reusedAgain) = Ingest(second.StandardOutput);
        Assert.Equal(chunks, chunksAgain);
        Assert.Equal(0, computedAgain);
        Assert.Equal(chunks, reusedAgain);
        Assert.Contains("0 embedded", second.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--questions must be from 1 to 10, got 0.", "--questions", "0")]
    [InlineData("--questions must be from 1 to 10, got 11.", "--questions", "11")]
    [InlineData("--top must be from 1 to 32, got 0.", "--top", "0")]
    [InlineData("--max-tokens must be from 1 to 1024, got 0.", "--max-tokens", "0")]
    public async Task A_bad_option_fails_with_one_line_that_names_it(string message, params string[] options)
    {
        // Checked before the model, the corpus or the store are touched: no ../shared needed.
        using var work = new TempDirectory();

        var run = await Kvfusion.RunInAsync(work.Path, null, ["demo", .. options]);

        run.AssertFailedWith(message);
        Assert.Empty(Directory.GetFileSystemEntries(work.Path));
    }

    [SkippableFact]
    public async Task A_corpus_that_is_not_there_is_reported_by_name()
    {
        using var work = new TempDirectory();

        var run = await Kvfusion.RunInAsync(work.Path, null, ["demo", "--model", SharedModels.Path("tiny-pydocs"), "--corpus", "missing.tar.xz"]);

        run.AssertFailedWith("Corpus not found: missing.tar.xz");
    }

    /// <summary>The numbers of the "Ingest: P pages, C chunks (T tokens): X computed, Y reused; …" line.</summary>
    private static (int Chunks, int Computed, int Reused) Ingest(string output)
    {
        var m = IngestLine().Match(output);
        Assert.True(m.Success, $"no ingest line in:\n{output}");
        return (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"Ingest: \d+ pages, (\d+) chunks \(\d+ tokens\): (\d+) computed, (\d+) reused")]
    private static partial Regex IngestLine();
}
