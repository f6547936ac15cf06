using System.Text.Json;

namespace KvFusion.Diagnostics.Rag;

/// <summary>
/// Writes a <see cref="RagReport"/> as indented JSON: <c>model</c>, <c>settings</c>, <c>ingest</c>, <c>questions</c>
/// (each with <c>retrieved</c>, <c>full</c>, <c>blend</c>, <c>speedup</c> and the agreement measures) and
/// <c>summary</c>. Times are milliseconds, names snake_case.
/// </summary>
public static class RagReportJson
{
    /// <summary>Writes <paramref name="report"/> to <paramref name="path"/>, creating its folder.</summary>
    public static void Write(string path, RagReport report)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(report);
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
        }

        using var stream = File.Create(path);
        Write(stream, report);
    }

    /// <summary>Writes <paramref name="report"/> to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, RagReport report)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(report);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("model", report.Model);

        var o = report.Options;
        w.WriteStartObject("settings");
        w.WriteString("corpus", o.CorpusPath is { } corpus ? corpus : "../" + RagDemoSet.SharedCorpus);
        w.WriteStartArray("pages");
        foreach (var page in o.Pages)
        {
            w.WriteStringValue(page);
        }

        w.WriteEndArray();
        w.WriteNumber("chunk_tokens", o.ChunkTokens);
        w.WriteNumber("top", o.Top);
        w.WriteNumber("max_tokens", o.MaxTokens);
        w.WriteNumber("recompute_ratio", o.RecomputeRatio);
        w.WriteString("sampling", "greedy");
        w.WriteEndObject();

        var i = report.Ingest;
        w.WriteStartObject("ingest");
        w.WriteNumber("pages", i.Pages);
        w.WriteNumber("chunks", i.Chunks);
        w.WriteNumber("tokens", i.Tokens);
        w.WriteNumber("chunks_computed", i.ChunksComputed);
        w.WriteNumber("chunks_reused", i.ChunksReused);
        w.WriteNumber("chunks_embedded", i.ChunksEmbedded);
        w.WriteNumber("embeddings_reused", i.EmbeddingsReused);
        w.WriteNumber("elapsed_ms", Math.Round(i.Elapsed.TotalMilliseconds, 1));
        w.WriteEndObject();

        w.WriteStartArray("questions");
        foreach (var q in report.Questions)
        {
            w.WriteStartObject();
            w.WriteNumber("index", q.Index);
            w.WriteString("question", q.Question.Text);
            w.WriteString("page", q.Question.Page);
            w.WriteStartArray("retrieved");
            foreach (var r in q.Retrieved)
            {
                w.WriteStartObject();
                w.WriteString("chunk_id", r.ChunkId);
                w.WriteString("page", r.Page);
                WriteNumber(w, "score", r.Score, 4);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteBoolean("retrieved_answering_page", q.RetrievedAnsweringPage);
            WriteAnswer(w, "full", q.Full);
            WriteAnswer(w, "blend", q.Blend);
            WriteNumber(w, "speedup", q.Speedup, 3);
            WriteNumber(w, "prefix_agreement", q.PrefixAgreement, 4);
            WriteNumber(w, "token_overlap", q.TokenOverlap, 4);
            w.WriteEndObject();
        }

        w.WriteEndArray();

        var s = report.Summary;
        w.WriteStartObject("summary");
        w.WriteNumber("questions", s.Questions);
        WriteNumber(w, "mean_ttft_full_ms", s.MeanTtftFullMs, 3);
        WriteNumber(w, "median_ttft_full_ms", s.MedianTtftFullMs, 3);
        WriteNumber(w, "mean_ttft_blend_ms", s.MeanTtftBlendMs, 3);
        WriteNumber(w, "median_ttft_blend_ms", s.MedianTtftBlendMs, 3);
        WriteNumber(w, "mean_speedup", s.MeanSpeedup, 3);
        WriteNumber(w, "mean_prefix_agreement", s.MeanPrefixAgreement, 4);
        WriteNumber(w, "mean_token_overlap", s.MeanTokenOverlap, 4);
        w.WriteNumber("identical_answers", s.IdenticalAnswers);
        w.WriteNumber("retrieval_hits", s.RetrievalHits);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteAnswer(Utf8JsonWriter w, string name, RagAnswer a)
    {
        w.WriteStartObject(name);
        w.WriteString("mode", a.Mode);
        WriteNumber(w, "ttft_ms", a.TtftMs, 3);
        w.WriteNumber("prompt_tokens", a.PromptTokens);
        w.WriteNumber("reused_tokens", a.ReusedTokens);
        w.WriteNumber("recomputed_tokens", a.RecomputedTokens);
        w.WriteNumber("answer_tokens", a.Tokens.Count);
        w.WriteString("answer", a.Text);
        w.WriteStartObject("stage_ms");
        foreach (var (stage, ms) in a.StageMs)
        {
            WriteNumber(w, stage, ms, 3);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }

    // JSON has no NaN: a measure that is undefined (a zero TTFT, say) is written as null.
    private static void WriteNumber(Utf8JsonWriter w, string name, double value, int digits)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumber(name, Math.Round(value, digits));
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
