using System.Globalization;
using ScottPlot;

namespace KvFusion.Diagnostics.Rag;

/// <summary>The demo's chart: time to first token per question, full prefill and blend side by side.</summary>
public static class RagTtftChart
{
    private static readonly Color FullColor = Color.FromHex("#1f77b4");
    private static readonly Color BlendColor = Color.FromHex("#d62728");

    /// <summary>
    /// ScottPlot falls back to SkiaSharp's default typeface, which on Debian with fonts-dejavu-core is a serif face;
    /// ask the font manager for a sans-serif family that is installed.
    /// </summary>
    private static readonly Lazy<string> SansFont = new(() =>
    {
        foreach (var name in new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Open Sans", "Arial", "Helvetica", "Segoe UI" })
        {
            using var match = SkiaSharp.SKFontManager.Default.MatchFamily(name);
            if (match is not null && string.Equals(match.FamilyName, name, StringComparison.OrdinalIgnoreCase))
            {
                return name;
            }
        }

        return Fonts.Default;
    });

    /// <summary>Writes the PNG to <paramref name="path"/>, creating its folder.</summary>
    /// <exception cref="ArgumentException">No question results.</exception>
    public static void Write(string path, RagReport report, int width = 1100, int height = 520)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(report);
        if (report.Questions.Count == 0)
        {
            throw new ArgumentException("The report holds no question to plot.", nameof(report));
        }

        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
        }

        var plot = new Plot();
        plot.Font.Set(SansFont.Value);
        var s = report.Summary;
        plot.Title(string.Create(
            CultureInfo.InvariantCulture,
            $"RAG demo on {report.Model}: TTFT per question (top {report.Options.Top}, mean speedup of blend {s.MeanSpeedup:0.00}x)"),
            18);
        plot.XLabel("question", 15);
        plot.YLabel("time to first token (ms)", 15);

        var full = new List<Bar>();
        var blend = new List<Bar>();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var q in report.Questions)
        {
            full.Add(new Bar { Position = q.Index - 0.2, Value = q.Full.TtftMs, FillColor = FullColor, Size = 0.38 });
            blend.Add(new Bar { Position = q.Index + 0.2, Value = q.Blend.TtftMs, FillColor = BlendColor, Size = 0.38 });
            ticks.AddMajor(q.Index, q.Index.ToString(CultureInfo.InvariantCulture));
        }

        var fullBars = plot.Add.Bars(full);
        fullBars.LegendText = string.Create(CultureInfo.InvariantCulture, $"full (mean {s.MeanTtftFullMs:0.0} ms)");
        var blendBars = plot.Add.Bars(blend);
        blendBars.LegendText = string.Create(CultureInfo.InvariantCulture, $"blend (mean {s.MeanTtftBlendMs:0.0} ms)");
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, width, height);
    }
}
