using System.Globalization;
using Spectre.Console;

namespace KvFusion.Diagnostics.Rag;

/// <summary>
/// The demo's console output: ingest progress bars (meant for standard error), the per-question table with both
/// answers side by side, and the summary table (meant for standard output).
/// </summary>
public static class RagConsoleView
{
    /// <summary>Answers are cut to this many characters in the table.</summary>
    public const int AnswerWidth = 56;

    /// <summary>Runs <paramref name="ingest"/> under a progress bar per stage on <paramref name="console"/>.</summary>
    public static async Task<RagIngestResult> ShowIngestAsync(IAnsiConsole console, Func<IProgress<RagIngestProgress>, Task<RagIngestResult>> ingest)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(ingest);
        RagIngestResult? result = null;
        await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                var progress = new SynchronousProgress(p =>
                {
                    if (!tasks.TryGetValue(p.Stage, out var task))
                    {
                        task = ctx.AddTask(Describe(p.Stage), maxValue: Math.Max(1, p.Total));
                        tasks[p.Stage] = task;
                    }

                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Total == 0 ? task.MaxValue : p.Done;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{Describe(p.Stage)} {p.Done}/{p.Total}");
                });
                result = await ingest(progress).ConfigureAwait(false);
            }).ConfigureAwait(false);
        return result!;
    }

    /// <summary>One line: chunks and how many were computed versus found stored.</summary>
    public static void WriteIngest(IAnsiConsole console, RagIngestResult ingest)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(ingest);
        console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"Ingest: {ingest.Pages} pages, {ingest.Chunks} chunks ({ingest.Tokens} tokens): {ingest.ChunksComputed} computed, {ingest.ChunksReused} reused; {ingest.ChunksEmbedded} embedded, {ingest.EmbeddingsReused} embeddings reused; {ingest.Elapsed.TotalSeconds:0.0} s"));
    }

    /// <summary>The per-question table: TTFT of each mode, the speedup, reused and recomputed tokens, both answers.</summary>
    public static void WriteQuestions(IAnsiConsole console, IReadOnlyList<RagQuestionResult> results)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(results);
        var table = new Table().Title("Per question (greedy; TTFT from the fusion request to the first token)");
        table.AddColumn("#");
        table.AddColumn("question");
        table.AddColumn(new TableColumn("TTFT full ms").RightAligned());
        table.AddColumn(new TableColumn("TTFT blend ms").RightAligned());
        table.AddColumn(new TableColumn("speedup").RightAligned());
        table.AddColumn(new TableColumn("reused").RightAligned());
        table.AddColumn(new TableColumn("recomputed").RightAligned());
        table.AddColumn("answer (full)");
        table.AddColumn("answer (blend)");
        foreach (var r in results)
        {
            table.AddRow(
                Cell(r.Index.ToString(CultureInfo.InvariantCulture)),
                Cell(Truncate(r.Question.Text, 48)),
                Cell(Ms(r.Full.TtftMs)),
                Cell(Ms(r.Blend.TtftMs)),
                Cell(string.Create(CultureInfo.InvariantCulture, $"{r.Speedup:0.00}x")),
                Cell(r.Blend.ReusedTokens.ToString(CultureInfo.InvariantCulture)),
                Cell(string.Create(CultureInfo.InvariantCulture, $"{r.Blend.RecomputedTokens}/{r.Blend.PromptTokens}")),
                Cell(Truncate(r.Full.Text, AnswerWidth)),
                Cell(Truncate(r.Blend.Text, AnswerWidth)));
        }

        console.Write(table);
    }

    /// <summary>The summary table: mean and median TTFT of each mode, the mean speedup and the agreement of the answers.</summary>
    public static void WriteSummary(IAnsiConsole console, RagReport report)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(report);
        var s = report.Summary;
        var table = new Table().Title(string.Create(CultureInfo.InvariantCulture, $"Summary over {s.Questions} questions"));
        table.AddColumn("measure");
        table.AddColumn(new TableColumn("full").RightAligned());
        table.AddColumn(new TableColumn("blend").RightAligned());
        table.AddRow("mean TTFT (ms)", Ms(s.MeanTtftFullMs), Ms(s.MeanTtftBlendMs));
        table.AddRow("median TTFT (ms)", Ms(s.MedianTtftFullMs), Ms(s.MedianTtftBlendMs));
        table.AddRow("mean speedup of blend over full", "", string.Create(CultureInfo.InvariantCulture, $"{s.MeanSpeedup:0.00}x"));
        table.AddRow("mean shared greedy prefix with full", "", Percent(s.MeanPrefixAgreement));
        table.AddRow("mean token overlap with full", "", Percent(s.MeanTokenOverlap));
        table.AddRow("identical answers", "", string.Create(CultureInfo.InvariantCulture, $"{s.IdenticalAnswers}/{s.Questions}"));
        table.AddRow(
            "retrieval found the answering page",
            string.Create(CultureInfo.InvariantCulture, $"{s.RetrievalHits}/{s.Questions}"),
            string.Create(CultureInfo.InvariantCulture, $"{s.RetrievalHits}/{s.Questions}"));
        console.Write(table);
        console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"Mean TTFT speedup of blend over full: {s.MeanSpeedup:0.00}x (full {s.MeanTtftFullMs:0.0} ms, blend {s.MeanTtftBlendMs:0.0} ms)"));
    }

    /// <summary>Text on one line (newlines shown as spaces), cut to <paramref name="width"/> characters with an ellipsis.</summary>
    public static string Truncate(string text, int width)
    {
        ArgumentNullException.ThrowIfNull(text);
        var line = string.Join(' ', text.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return line.Length <= width ? line : string.Concat(line.AsSpan(0, Math.Max(0, width - 1)), "…");
    }

    private static Text Cell(string text) => new(text);

    private static string Ms(double ms) => ms.ToString("0.0", CultureInfo.InvariantCulture);

    private static string Percent(double share) => (share * 100).ToString("0.0", CultureInfo.InvariantCulture) + " %";

    private static string Describe(string stage) => stage switch
    {
        RagIngestProgress.Precompute => "precompute KV",
        RagIngestProgress.Embed => "embed chunks",
        _ => stage,
    };

    /// <summary>Reports on the caller's thread: <see cref="Progress{T}"/> would post to the thread pool and lag behind.</summary>
    private sealed class SynchronousProgress(Action<RagIngestProgress> report) : IProgress<RagIngestProgress>
    {
        public void Report(RagIngestProgress value) => report(value);
    }
}
