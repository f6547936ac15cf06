using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace KvFusion.Benchmarks;

/// <summary>The result tables (standard output) and the JSON file.</summary>
internal static class Report
{
    public static void WriteTables(IAnsiConsole console, BenchmarkSettings settings, IReadOnlyList<ComparisonResult> results, IReadOnlyList<ParallelCheck> checks)
    {
        ArgumentNullException.ThrowIfNull(console);
        var anchored = LlamaBenchAnchors.AppliesTo(settings.ModelDirectory);
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
        if (anchored)
        {
            prefill.AddColumns(new TableColumn("anchor ppN*").RightAligned(), new TableColumn("ours/anchor*").RightAligned());
        }

        foreach (var r in results)
        {
            var cells = new List<string>
            {
                Int(r.Threads), Int(r.PromptTokens),
                Rate(r.Ours.PrefillTokensPerSecond), Rate(r.LlamaCpp.PrefillTokensPerSecond), RatioCell(r.PrefillRatio),
                string.Join(" ", r.PrefillRatioByRound.Select(x => x.ToString("F2", CultureInfo.InvariantCulture))),
                Ms(r.Ours.TtftMilliseconds), Ms(r.LlamaCpp.TtftMilliseconds), RatioCell(r.TtftRatio),
            };
            if (anchored)
            {
                cells.Add(r.AnchorPrefillTokensPerSecond is { } a ? Rate(a) : "-");
                cells.Add(RatioCell(r.PrefillRatioToAnchor));
            }

            prefill.AddRow(cells.ToArray());
        }

        console.Write(prefill);

        var decode = new Table().Title("decode, greedy, after the prompt (same run)").AddColumns(
            new TableColumn("threads").RightAligned(), new TableColumn("prompt").RightAligned(), new TableColumn("steps").RightAligned(),
            new TableColumn("ours tok/s").RightAligned(), new TableColumn("llama.cpp tok/s").RightAligned(), new TableColumn("ours/llama.cpp").RightAligned(),
            new TableColumn("greedy agree").RightAligned());
        if (anchored)
        {
            decode.AddColumns(new TableColumn("anchor tg128*").RightAligned(), new TableColumn("ours/anchor*").RightAligned());
        }

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
            if (anchored)
            {
                cells.Add(r.AnchorDecodeTokensPerSecond is { } a ? Rate(a) : "-");
                cells.Add(RatioCell(r.DecodeRatioToAnchor));
            }

            decode.AddRow(cells.ToArray());
        }

        console.Write(decode);

        if (anchored)
        {
            console.MarkupLine($"[yellow]*[/] {Markup.Escape(LlamaBenchAnchors.Label)}: llama.cpp c392e50 -march=native, F16 KV, no flash attention, on this kind of machine at another time; ppN is the cell for this prompt length (none for other lengths), tg128 decodes from an almost empty context.");
        }

        console.MarkupLine("[grey]greedy agree: leading greedy tokens (after the prompt, then per decode step) on which both engines agree, checked untimed once per thread count and prompt.[/]");
        console.MarkupLine("[grey]llama.cpp decode here goes through LLamaSharp's single-token Decode, which cpu.md found far slower than llama-bench's tg128 and slowing with context: compare decode with the anchor as well.[/]");
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

    public static void WriteJson(string path, BenchmarkSettings settings, IReadOnlyList<ComparisonResult> results, IReadOnlyList<ParallelCheck> checks)
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
            if (r.AnchorPrefillTokensPerSecond is not null || r.AnchorDecodeTokensPerSecond is not null)
            {
                w.WriteStartObject("anchor");
                w.WriteString("source", LlamaBenchAnchors.Label);
                Number(w, "prefill_tokens_per_s", r.AnchorPrefillTokensPerSecond, 0);
                Number(w, "decode_tg128_tokens_per_s", r.AnchorDecodeTokensPerSecond, 0);
                Number(w, "prefill_ratio", r.PrefillRatioToAnchor, 4);
                Number(w, "decode_ratio", r.DecodeRatioToAnchor, 4);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
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
