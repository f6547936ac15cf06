using System.Globalization;
using System.Text.Json;
using KvFusion.Diagnostics.Benchmarks;
using Spectre.Console;

namespace KvFusion.Benchmarks;

/// <summary>The result tables (standard output) and the JSON file.</summary>
internal static class Report
{
    public static void WriteTables(
        IAnsiConsole console, BenchmarkSettings settings, IReadOnlyList<ComparisonResult> results, IReadOnlyList<ParallelCheck> checks, PublishedLlamaBench? published)
    {
        ArgumentNullException.ThrowIfNull(console);
        var samples = settings.Rounds * settings.Runs;
        console.MarkupLineInterpolated(
            $"model [bold]{settings.ModelDirectory}[/], llama.cpp via LLamaSharp 0.30.0 on [bold]{settings.GgufPath}[/]");
        console.MarkupLineInterpolated(
            $"medians of {samples} interleaved runs per engine and cell ({settings.Rounds} rounds × {settings.Runs}, after 1 warm-up each); ratios > 1 mean ours is faster");

        var prefill = new Table().Title("prefill and time to first token (same run)").AddColumns(
            new TableColumn("threads").RightAligned(), new TableColumn("prompt").RightAligned(),
            new TableColumn("ours tok/s").RightAligned(), new TableColumn("llama.cpp tok/s").RightAligned(), new TableColumn("ours/llama.cpp").RightAligned(),
            new TableColumn("ratio by round").RightAligned(),
            new TableColumn("ours TTFT ms").RightAligned(), new TableColumn("llama.cpp TTFT ms").RightAligned(), new TableColumn("TTFT llama.cpp/ours").RightAligned());
        foreach (var r in results)
        {
            var cells = new List<string>
            {
                Int(r.Threads), Int(r.PromptTokens),
                Rate(r.Ours.PrefillTokensPerSecond), Rate(r.LlamaCpp.PrefillTokensPerSecond), RatioCell(r.PrefillRatio),
                string.Join(" ", r.PrefillRatioByRound.Select(x => x.ToString("F2", CultureInfo.InvariantCulture))),
                Ms(r.Ours.TtftMilliseconds), Ms(r.LlamaCpp.TtftMilliseconds), RatioCell(r.TtftRatio),
            };
            prefill.AddRow(cells.ToArray());
        }

        console.Write(prefill);

        var decode = new Table().Title("decode, greedy, after the prompt (same run)").AddColumns(
            new TableColumn("threads").RightAligned(), new TableColumn("prompt").RightAligned(), new TableColumn("steps").RightAligned(),
            new TableColumn("ours tok/s").RightAligned(), new TableColumn("llama.cpp tok/s").RightAligned(), new TableColumn("ours/llama.cpp").RightAligned(),
            new TableColumn("greedy agree").RightAligned());
        foreach (var r in results)
        {
            var none = r.DecodeSteps == 0 ? "n/a (context full)" : "n/a";
            var cells = new List<string>
            {
                Int(r.Threads), Int(r.PromptTokens), Int(r.DecodeSteps),
                r.Ours.DecodeTokensPerSecond is { } o ? Rate(o) : none,
                r.LlamaCpp.DecodeTokensPerSecond is { } l ? Rate(l) : none,
                RatioCell(r.DecodeRatio),
                $"{r.GreedyAgreedPrefix}/{r.GreedyTokens}",
            };
            decode.AddRow(cells.ToArray());
        }

        console.Write(decode);

        console.MarkupLine("[grey]greedy agree: leading greedy tokens (after the prompt, then per decode step) on which both engines agree, checked untimed once per thread count and prompt.[/]");
        console.MarkupLine("[grey]llama.cpp decode here goes through LLamaSharp's single-token Decode, which cpu.md found far slower than llama-bench's tg128 and slowing with context: llama-bench's own decode figure is in the published section below, when one applies.[/]");
        WritePublished(console, settings, published);
        foreach (var group in checks.GroupBy(c => c.Threads))
        {
            var values = string.Join(", ", group.Select(c => c.Efficiency.ToString("F2", CultureInfo.InvariantCulture)));
            var low = group.Any(c => c.Efficiency < ParallelismProbe.WarningThreshold);
            var line = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"parallel efficiency before each {group.Key}-thread round: {values}"));
            console.MarkupLine(low
                ? string.Create(CultureInfo.InvariantCulture, $"[yellow]warning:[/] {line} (< {ParallelismProbe.WarningThreshold:F1}: the cores were busy elsewhere, see cpu.md; those rounds are suspect)")
                : line);
        }
    }

    public static void WriteJson(
        string path, BenchmarkSettings settings, IReadOnlyList<ComparisonResult> results, IReadOnlyList<ParallelCheck> checks, PublishedLlamaBench? published)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir)
        {
            Directory.CreateDirectory(dir);
        }

        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("model", settings.ModelDirectory);
        w.WriteString("gguf", settings.GgufPath);
        w.WriteString("baseline", "llama.cpp via LLamaSharp 0.30.0 (LLamaSharp.Backend.Cpu)");
        w.WriteNumber("rounds", settings.Rounds);
        w.WriteNumber("runs", settings.Runs);
        w.WriteNumber("samples_per_engine", settings.Rounds * settings.Runs);

        // The worst check: one busy stretch is enough to make the multi-thread numbers suspect. Null without any.
        if (checks.Count > 0)
        {
            w.WriteNumber("parallel_efficiency", Math.Round(checks.Min(c => c.Efficiency), 3));
        }
        else
        {
            w.WriteNull("parallel_efficiency");
        }

        w.WriteStartArray("parallel_checks");
        foreach (var c in checks)
        {
            w.WriteStartObject();
            w.WriteNumber("threads", c.Threads);
            w.WriteNumber("round", c.Round + 1);
            w.WriteNumber("efficiency", Math.Round(c.Efficiency, 3));
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("results");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteNumber("threads", r.Threads);
            w.WriteNumber("prompt_tokens", r.PromptTokens);
            w.WriteNumber("gen_tokens", r.GenTokens);
            w.WriteNumber("decode_steps", r.DecodeSteps);
            w.WriteNumber("samples", r.Samples);
            WriteEngine(w, "ours", r.Ours);
            WriteEngine(w, "llamacpp", r.LlamaCpp);
            Number(w, "prefill_ratio", r.PrefillRatio, 4);
            Number(w, "decode_ratio", r.DecodeRatio, 4);
            Number(w, "ttft_ratio", r.TtftRatio, 4);
            w.WriteStartArray("prefill_ratio_by_round");
            foreach (var x in r.PrefillRatioByRound)
            {
                w.WriteNumberValue(Math.Round(x, 4));
            }

            w.WriteEndArray();
            w.WriteStartObject("greedy_agreement");
            w.WriteNumber("matching_prefix", r.GreedyAgreedPrefix);
            w.WriteNumber("tokens", r.GreedyTokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        w.WriteEndArray();

        // Beside the results, never inside them: these numbers come from another run and no ratio is taken.
        if (published is null)
        {
            w.WriteNull("published_llama_bench");
        }
        else
        {
            w.WriteStartObject("published_llama_bench");
            w.WriteString("label", PublishedLlamaBench.Label);
            w.WriteString("source", PublishedLlamaBench.Source);
            w.WriteString("model", published.Model);
            w.WriteString("matched_by", published.MatchedBy);
            w.WriteStartArray("rows");
            foreach (var row in published.Rows.Where(row => settings.Threads.Contains(row.Threads)))
            {
                w.WriteStartObject();
                w.WriteNumber("threads", row.Threads);
                w.WriteNumber("pp128_tokens_per_s", row.Pp128);
                w.WriteNumber("pp512_tokens_per_s", row.Pp512);
                w.WriteNumber("pp2048_tokens_per_s", row.Pp2048);
                w.WriteNumber("tg128_tokens_per_s", row.Tg128);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WritePublished(IAnsiConsole console, BenchmarkSettings settings, PublishedLlamaBench? published)
    {
        if (published is null)
        {
            console.MarkupLine($"[grey]{Markup.Escape(PublishedLlamaBench.Label)}: none for this model (matched by weights fingerprint or shape, not by folder name).[/]");
            return;
        }

        var table = new Table().Title($"{Markup.Escape(PublishedLlamaBench.Label)}: {Markup.Escape(published.Model)}, matched by {Markup.Escape(published.MatchedBy)}").AddColumns(
            new TableColumn("threads").RightAligned(), new TableColumn("pp128").RightAligned(), new TableColumn("pp512").RightAligned(),
            new TableColumn("pp2048").RightAligned(), new TableColumn("tg128").RightAligned());
        foreach (var row in published.Rows.Where(row => settings.Threads.Contains(row.Threads)))
        {
            table.AddRow(Int(row.Threads), Rate(row.Pp128), Rate(row.Pp512), Rate(row.Pp2048), Rate(row.Tg128));
        }

        console.Write(table);
        console.MarkupLine($"[grey]{Markup.Escape(PublishedLlamaBench.Source)}. Compare with the same-run llama.cpp columns above, not with these.[/]");
    }

    private static void WriteEngine(Utf8JsonWriter w, string name, EngineSummary s)
    {
        w.WriteStartObject(name);
        w.WriteNumber("prefill_tokens_per_s", Math.Round(s.PrefillTokensPerSecond, 2));
        Number(w, "decode_tokens_per_s", s.DecodeTokensPerSecond, 2);
        w.WriteNumber("ttft_ms", Math.Round(s.TtftMilliseconds, 3));
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double? value, int digits)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, Math.Round(v, digits));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Rate(double value) => value.ToString("F0", CultureInfo.InvariantCulture);

    private static string Ms(double value) => value.ToString("F1", CultureInfo.InvariantCulture);

    private static string RatioCell(double? value) => value is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) : "n/a";
}
