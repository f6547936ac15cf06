using System.Globalization;
using ScottPlot;
using SkiaSharp;

namespace KvFusion.Cli.Plotting;

/// <summary>
/// Writes the benchmark and evaluation charts as PNG files. Rendering is CPU-only (SkiaSharp raster surfaces), so it
/// needs no display server; text needs at least one font under /usr/share/fonts (Debian: fonts-dejavu-core).
/// </summary>
internal static class FusionCharts
{
    private const float TitleFontSize = 22;
    private const float PanelTitleFontSize = 17;
    private const float AxisLabelFontSize = 16;
    private const float TickLabelFontSize = 13;
    private const float LegendFontSize = 13;
    private const float PointLabelFontSize = 12;

    private static readonly Color[] SeriesColors =
    [
        Color.FromHex("#1f77b4"), Color.FromHex("#d62728"), Color.FromHex("#2ca02c"), Color.FromHex("#ff7f0e"),
        Color.FromHex("#9467bd"), Color.FromHex("#8c564b"), Color.FromHex("#e377c2"), Color.FromHex("#17becf"),
        Color.FromHex("#bcbd22"), Color.FromHex("#7f7f7f"),
    ];

    /// <summary>
    /// Three side-by-side panels against the recompute fraction: mean KL, top-1 agreement and TTFT speed-up over full
    /// prefill. Single modes (full, reuse, ...) are labelled markers; blend modes of one variant family
    /// (<c>blend:0.15</c>, <c>blend:0.3</c> / <c>blend:0.15:ref</c>, ...) are joined by a line in fraction order.
    /// </summary>
    public static void QualityVersusRecompute(string pngPath, string title, IReadOnlyList<QualityPoint> points)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        const int width = 1400;
        const int height = 500;
        const int titleBand = 44;

        List<QualitySeries> series = GroupQualitySeries(points);
        // Falling: the metric typically drops as more is recomputed, which decides where point labels stay clear of
        // their own line.
        (string Label, Func<QualityPoint, double> Value, string YLabel, bool FromZero, bool Falling)[] panels =
        [
            ("Mean KL vs full", p => p.MeanKl, "mean KL divergence (nats)", true, true),
            ("Top-1 agreement with full", p => p.Top1Agreement, "top-1 agreement", false, false),
            ("TTFT speed-up over full", p => p.TtftRatioToFull > 0 ? p.TtftRatioToFull : double.NaN, "TTFT speed-up (x)", true, true),
        ];

        using SKSurface surface = CreateSurface(width, height);
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);

        float panelWidth = width / (float)panels.Length;
        for (int i = 0; i < panels.Length; i++)
        {
            var panel = panels[i];
            Plot plot = NewPlot(panel.Label, "recompute fraction", panel.YLabel, PanelTitleFontSize);
            List<Coordinates> all = [];
            foreach (QualitySeries s in series)
            {
                List<(double X, double Y, string? Label)> xy = s.Points
                    .Select(p => (p.Point.RecomputeFraction, panel.Value(p.Point), p.Label))
                    .Where(p => double.IsFinite(p.Item1) && double.IsFinite(p.Item2))
                    .ToList();
                AddQualitySeries(plot, s, xy, panel.Falling);
                all.AddRange(xy.Select(p => new Coordinates(p.X, p.Y)));
            }

            if (i == 2)
            {
                var one = plot.Add.HorizontalLine(1.0, 1, Colors.Gray, LinePattern.Dashed);
                one.ExcludeFromLegend = true;
            }

            AxisLimits limits = QualityLimits(all, panel.FromZero, i == 1);
            plot.Axes.SetLimits(limits);
            // One legend for the figure (colors are the same in every panel), in the first panel's emptiest corner.
            if (i == 0 && series.Count > 0)
            {
                plot.ShowLegend(EmptiestCorner(all, limits));
                StyleLegend(plot);
            }
            else
            {
                plot.HideLegend();
            }

            // Plot.Render clears its whole canvas, so each panel renders onto its own surface first.
            int left = (int)MathF.Round(i * panelWidth);
            int right = (int)MathF.Round((i + 1) * panelWidth);
            using SKSurface panelSurface = CreateSurface(right - left, height - titleBand);
            plot.Render(panelSurface);
            using SKImage panelImage = panelSurface.Snapshot();
            canvas.DrawImage(panelImage, left, titleBand);
        }

        DrawTitle(canvas, title, width, titleBand);
        SavePng(surface, pngPath);
    }

    /// <summary>
    /// Cross-model sharing profile, two panels: per layer, the receiver's mean KL when only that layer reuses the
    /// sender's K/V (bars, full reuse's KL as a dashed line); and every measured recompute set's KL against the layers
    /// it recomputes, the chosen set marked.
    /// </summary>
    public static void SharingSensitivity(string pngPath, string title, IReadOnlyList<double> layerKl, double reuseKl,
        IReadOnlyList<(int Layers, double MeanKl, string Label)> sets, (int Layers, double MeanKl, string Label) chosen)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(layerKl);
        ArgumentNullException.ThrowIfNull(sets);
        const int width = 1300;
        const int height = 520;
        const int titleBand = 44;
        using SKSurface surface = CreateSurface(width, height);
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);

        Plot bars = NewPlot("KL when only this layer reuses the sender's KV", "layer", "mean KL vs receiver's full prefill (nats)", PanelTitleFontSize);
        bars.Add.Bars(layerKl.Select((kl, l) => new Bar { Position = l, Value = double.IsFinite(kl) ? kl : 0, FillColor = SeriesColors[0] }).ToArray());
        var reuse = bars.Add.HorizontalLine(reuseKl, 2, SeriesColors[1], LinePattern.Dashed);
        reuse.LegendText = "full reuse (no layer recomputed)";
        bars.Axes.Bottom.TickGenerator = IntegerTicks(layerKl.Select((_, l) => (double)l));
        bars.Axes.SetLimits(-0.6, layerKl.Count - 0.4, 0, UpperLimit([.. layerKl, reuseKl]));
        bars.ShowLegend(Alignment.UpperRight);
        StyleLegend(bars);

        Plot curve = NewPlot("Quality against compute", "layers recomputed", "mean KL vs receiver's full prefill (nats)", PanelTitleFontSize);
        var all = curve.Add.ScatterPoints(sets.Select(p => (double)p.Layers).ToArray(), sets.Select(p => p.MeanKl).ToArray(), SeriesColors[9]);
        all.MarkerSize = 6;
        all.LegendText = "measured sets";
        var pick = curve.Add.ScatterPoints(new double[] { chosen.Layers }, new[] { chosen.MeanKl }, SeriesColors[2]);
        pick.MarkerSize = 14;
        pick.MarkerShape = MarkerShape.FilledDiamond;
        pick.LegendText = $"chosen: {chosen.Label}";
        var budgetLine = curve.Add.HorizontalLine(reuseKl, 2, SeriesColors[1], LinePattern.Dashed);
        budgetLine.ExcludeFromLegend = true;
        curve.Axes.Bottom.TickGenerator = IntegerTicks(sets.Select(p => (double)p.Layers));
        curve.Axes.SetLimits(-0.3, Math.Max(1, sets.Count == 0 ? 1 : sets.Max(p => p.Layers)) + 0.3, 0, UpperLimit([.. sets.Select(p => p.MeanKl), reuseKl]));
        curve.ShowLegend(Alignment.UpperRight);
        StyleLegend(curve);

        Plot[] panels = [bars, curve];
        for (int i = 0; i < panels.Length; i++)
        {
            int left = i * width / panels.Length;
            int right = (i + 1) * width / panels.Length;
            using SKSurface panelSurface = CreateSurface(right - left, height - titleBand);
            panels[i].Render(panelSurface);
            using SKImage panelImage = panelSurface.Snapshot();
            canvas.DrawImage(panelImage, left, titleBand);
        }

        DrawTitle(canvas, title, width, titleBand);
        SavePng(surface, pngPath);
    }

    /// <summary>Time to first token against the number of chunks, one line per mode, on a log-scaled y axis.</summary>
    public static void TtftByChunks(string pngPath, string title, IReadOnlyList<TtftPoint> points)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        Plot plot = NewPlot(title, "number of chunks", "time to first token (ms, log scale)", TitleFontSize);
        List<TtftPoint> valid = points.Where(p => double.IsFinite(p.TtftMs) && p.TtftMs > 0).ToList();
        List<string> modes = valid.Select(p => p.Mode).Distinct(StringComparer.Ordinal).ToList();
        for (int m = 0; m < modes.Count; m++)
        {
            TtftPoint[] line = valid.Where(p => p.Mode == modes[m]).OrderBy(p => p.Chunks).ToArray();
            double[] xs = line.Select(p => (double)p.Chunks).ToArray();
            double[] ys = line.Select(p => Math.Log10(p.TtftMs)).ToArray();
            var scatter = plot.Add.Scatter(xs, ys, SeriesColors[m % SeriesColors.Length]);
            scatter.LegendText = modes[m];
            scatter.LineWidth = 2;
            scatter.MarkerSize = 9;
            scatter.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
        }

        plot.Axes.Bottom.TickGenerator = IntegerTicks(valid.Select(p => (double)p.Chunks));
        if (valid.Count > 0)
        {
            double lo = valid.Min(p => p.TtftMs);
            double hi = valid.Max(p => p.TtftMs);
            plot.Axes.Left.TickGenerator = Log10Ticks(lo, hi);
            double padLo = Math.Log10(lo) - 0.08 * Math.Max(Math.Log10(hi / lo), 0.3);
            double padHi = Math.Log10(hi) + 0.08 * Math.Max(Math.Log10(hi / lo), 0.3);
            double xLo = valid.Min(p => p.Chunks);
            double xHi = valid.Max(p => p.Chunks);
            double xPad = Math.Max((xHi - xLo) * 0.05, 0.5);
            plot.Axes.SetLimits(xLo - xPad, xHi + xPad, padLo, padHi);
            plot.ShowLegend(Alignment.UpperLeft);
            StyleLegend(plot);
        }

        Save(plot, pngPath, 1000, 600);
    }

    /// <summary>
    /// Two panels against concurrent clients: TTFT p50 (solid) and p99 (dashed) on a log scale, and output tokens/s,
    /// one line per series (scheduler and mode).
    /// </summary>
    public static void ServeByClients(string pngPath, string title, IReadOnlyList<ClientServePoint> points)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        Plot ttft = NewPlot(title, "concurrent clients", "time to first token (ms, log scale)", TitleFontSize);
        Plot throughput = NewPlot("output tokens/s, all clients together", "concurrent clients", "output tokens per second", TitleFontSize);
        List<string> series = points.Select(p => p.Series).Distinct(StringComparer.Ordinal).ToList();
        List<double> all = [];
        for (int m = 0; m < series.Count; m++)
        {
            ClientServePoint[] line = points.Where(p => p.Series == series[m]).OrderBy(p => p.Clients).ToArray();
            Color color = SeriesColors[m % SeriesColors.Length];
            foreach (var (pick, suffix, pattern) in new (Func<ClientServePoint, double>, string, LinePattern)[] { (p => p.P50Ms, "p50", LinePattern.Solid), (p => p.P99Ms, "p99", LinePattern.Dashed) })
            {
                ClientServePoint[] valid = line.Where(p => double.IsFinite(pick(p)) && pick(p) > 0).ToArray();
                if (valid.Length == 0)
                {
                    continue;
                }

                all.AddRange(valid.Select(pick));
                var scatter = ttft.Add.Scatter(valid.Select(p => (double)p.Clients).ToArray(), valid.Select(p => Math.Log10(pick(p))).ToArray(), color);
                scatter.LegendText = $"{series[m]} {suffix}";
                scatter.LineWidth = 2;
                scatter.LinePattern = pattern;
                scatter.MarkerSize = suffix == "p50" ? 9 : 7;
                scatter.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
            }

            ClientServePoint[] rates = line.Where(p => double.IsFinite(p.TokensPerSecond)).ToArray();
            if (rates.Length > 0)
            {
                var rate = throughput.Add.Scatter(rates.Select(p => (double)p.Clients).ToArray(), rates.Select(p => p.TokensPerSecond).ToArray(), color);
                rate.LegendText = series[m];
                rate.LineWidth = 2;
                rate.MarkerSize = 9;
                rate.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
            }
        }

        ttft.Axes.Bottom.TickGenerator = IntegerTicks(points.Select(p => (double)p.Clients));
        throughput.Axes.Bottom.TickGenerator = IntegerTicks(points.Select(p => (double)p.Clients));
        if (all.Count > 0)
        {
            double lo = all.Min();
            double hi = all.Max();
            ttft.Axes.Left.TickGenerator = Log10Ticks(lo, hi);
            double span = Math.Max(Math.Log10(hi / lo), 0.3);
            double xLo = points.Min(p => p.Clients);
            double xHi = points.Max(p => p.Clients);
            double xPad = Math.Max((xHi - xLo) * 0.05, 0.5);
            ttft.Axes.SetLimits(xLo - xPad, xHi + xPad, Math.Log10(lo) - 0.08 * span, Math.Log10(hi) + 0.08 * span);
            ttft.ShowLegend(Alignment.UpperLeft);
            StyleLegend(ttft);
            throughput.Axes.AutoScale();
            throughput.Axes.SetLimitsY(0, Math.Max(1, points.Where(p => double.IsFinite(p.TokensPerSecond)).Select(p => p.TokensPerSecond).DefaultIfEmpty(1).Max() * 1.1));
            throughput.ShowLegend(Alignment.UpperLeft);
            StyleLegend(throughput);
        }

        SaveSideBySide(pngPath, ttft, throughput);
    }

    /// <summary>
    /// Two panels against the link's nominal rate (log scale): TTFT p50 (solid) and p90 (dashed) on a log scale, and
    /// the share of requests that met the deadline, one line per loading policy.
    /// </summary>
    public static void LoaderByBandwidth(string pngPath, string title, IReadOnlyList<BandwidthLoadPoint> points)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        Plot ttft = NewPlot(title, "link rate (Gbit/s, log scale)", "time to first token (ms, log scale)", TitleFontSize);
        Plot met = NewPlot("requests that met the TTFT deadline", "link rate (Gbit/s, log scale)", "share of requests", TitleFontSize);
        List<string> policies = points.Select(p => p.Policy).Distinct(StringComparer.Ordinal).ToList();
        List<double> all = [];
        for (int m = 0; m < policies.Count; m++)
        {
            BandwidthLoadPoint[] line = points.Where(p => p.Policy == policies[m]).OrderBy(p => p.GbitPerSecond).ToArray();
            Color color = SeriesColors[m % SeriesColors.Length];
            double[] xs = line.Select(p => Math.Log10(p.GbitPerSecond)).ToArray();
            foreach (var (pick, suffix, pattern) in new (Func<BandwidthLoadPoint, double>, string, LinePattern)[] { (p => p.P50Ms, "p50", LinePattern.Solid), (p => p.P90Ms, "p90", LinePattern.Dashed) })
            {
                all.AddRange(line.Select(pick));
                var scatter = ttft.Add.Scatter(xs, line.Select(p => Math.Log10(Math.Max(pick(p), 1e-3))).ToArray(), color);
                scatter.LegendText = $"{policies[m]} {suffix}";
                scatter.LineWidth = 2;
                scatter.LinePattern = pattern;
                scatter.MarkerSize = suffix == "p50" ? 9 : 7;
                scatter.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
            }

            var share = met.Add.Scatter(xs, line.Select(p => p.DeadlineMet).ToArray(), color);
            share.LegendText = policies[m];
            share.LineWidth = 2;
            share.MarkerSize = 9;
            share.MarkerShape = MarkerShapes[m % MarkerShapes.Length];
        }

        if (all.Count > 0)
        {
            double lo = Math.Max(all.Min(), 1e-3);
            double hi = Math.Max(all.Max(), lo * 1.01);
            double xLo = points.Min(p => p.GbitPerSecond);
            double xHi = points.Max(p => p.GbitPerSecond);
            ttft.Axes.Left.TickGenerator = Log10Ticks(lo, hi);
            ttft.Axes.Bottom.TickGenerator = Log10Ticks(xLo, xHi);
            met.Axes.Bottom.TickGenerator = Log10Ticks(xLo, xHi);
            double span = Math.Max(Math.Log10(hi / lo), 0.3);
            double xSpan = Math.Max(Math.Log10(xHi / xLo), 0.3);
            ttft.Axes.SetLimits(Math.Log10(xLo) - 0.05 * xSpan, Math.Log10(xHi) + 0.05 * xSpan, Math.Log10(lo) - 0.08 * span, Math.Log10(hi) + 0.08 * span);
            met.Axes.SetLimits(Math.Log10(xLo) - 0.05 * xSpan, Math.Log10(xHi) + 0.05 * xSpan, -0.05, 1.05);
            ttft.ShowLegend(Alignment.UpperRight);
            StyleLegend(ttft);
            met.ShowLegend(Alignment.LowerRight);
            StyleLegend(met);
        }

        SaveSideBySide(pngPath, ttft, met);
    }

    /// <summary>Two panels side by side in one PNG; each renders on a surface of its own (a plot paints its whole canvas).</summary>
    private static void SaveSideBySide(string pngPath, Plot left, Plot right)
    {
        const int width = 900;
        const int height = 650;
        using SKSurface surface = CreateSurface(2 * width, height);
        surface.Canvas.Clear(SKColors.White);
        foreach (var (panel, x) in new[] { (left, 0), (right, width) })
        {
            using SKSurface half = CreateSurface(width, height);
            half.Canvas.Clear(SKColors.White);
            panel.Render(half.Canvas, new PixelRect(0, width, 0, height));
            using SKImage image = half.Snapshot();
            surface.Canvas.DrawImage(image, x, 0);
        }

        SavePng(surface, pngPath);
    }

    /// <summary>
    /// Prefill and decode throughput against prompt length. The two rates differ by orders of magnitude, so prefill
    /// uses the left axis and decode the right one, each labelled in its line's color.
    /// </summary>
    public static void EngineThroughput(
        string pngPath,
        string title,
        IReadOnlyList<(int PromptTokens, double PrefillTokensPerSecond, double DecodeTokensPerSecond)> points)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        Color prefillColor = SeriesColors[0];
        Color decodeColor = SeriesColors[1];
        Plot plot = NewPlot(title, "prompt length (tokens)", "prefill (tokens/s)", TitleFontSize);
        plot.Axes.Left.Label.ForeColor = prefillColor;
        plot.Axes.Right.Label.Text = "decode (tokens/s)";
        plot.Axes.Right.Label.FontSize = AxisLabelFontSize;
        plot.Axes.Right.Label.ForeColor = decodeColor;
        plot.Axes.Right.TickLabelStyle.FontSize = TickLabelFontSize;

        var sorted = points.OrderBy(p => p.PromptTokens).ToArray();
        double[] xs = sorted.Select(p => (double)p.PromptTokens).ToArray();

        var prefill = plot.Add.Scatter(xs, sorted.Select(p => p.PrefillTokensPerSecond).ToArray(), prefillColor);
        prefill.LegendText = "prefill (left axis)";
        prefill.LineWidth = 2;
        prefill.MarkerSize = 9;
        prefill.MarkerShape = MarkerShape.FilledCircle;

        var decode = plot.Add.Scatter(xs, sorted.Select(p => p.DecodeTokensPerSecond).ToArray(), decodeColor);
        decode.LegendText = "decode (right axis)";
        decode.LineWidth = 2;
        decode.MarkerSize = 9;
        decode.MarkerShape = MarkerShape.FilledSquare;
        decode.LinePattern = LinePattern.Dashed;
        decode.Axes.YAxis = plot.Axes.Right;

        if (sorted.Length > 0)
        {
            double xLo = xs[0];
            double xHi = xs[^1];
            double xPad = Math.Max((xHi - xLo) * 0.04, 1);
            plot.Axes.SetLimitsX(xLo - xPad, xHi + xPad, plot.Axes.Bottom);
            plot.Axes.SetLimitsY(0, UpperLimit(sorted.Select(p => p.PrefillTokensPerSecond)), plot.Axes.Left);
            plot.Axes.SetLimitsY(0, UpperLimit(sorted.Select(p => p.DecodeTokensPerSecond)), plot.Axes.Right);
            plot.ShowLegend(Alignment.LowerLeft);
            StyleLegend(plot);
        }

        Save(plot, pngPath, 1000, 600);
    }

    /// <summary>
    /// Fused quality against size: two side-by-side panels (blend's and reuse's mean KL to full) over container bits
    /// per value, one labelled marker per codec, and the uncompressed caches' KL of the same run as a dashed line.
    /// </summary>
    public static void QualityVersusSize(string pngPath, string title, IReadOnlyList<CodecQualityPoint> points, double baselineBlendKl, double baselineReuseKl, string blendMode)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pngPath);
        ArgumentNullException.ThrowIfNull(points);

        const int width = 1400;
        const int height = 560;
        const int titleBand = 44;
        (string Label, Func<CodecQualityPoint, double> Value, double Baseline)[] panels =
        [
            ($"{blendMode}: mean KL vs full", p => p.BlendMeanKl, baselineBlendKl),
            ("reuse: mean KL vs full", p => p.ReuseMeanKl, baselineReuseKl),
        ];

        using SKSurface surface = CreateSurface(width, height);
        SKCanvas canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        float panelWidth = width / (float)panels.Length;
        for (int i = 0; i < panels.Length; i++)
        {
            var panel = panels[i];
            Plot plot = NewPlot(panel.Label, "container bits per value", "mean KL divergence (nats)", PanelTitleFontSize);
            List<(double X, double Y, string Codec)> xy = points
                .Select(p => (p.BitsPerValue, panel.Value(p), p.Codec))
                .Where(p => double.IsFinite(p.BitsPerValue) && double.IsFinite(p.Item2))
                .ToList();
            for (int k = 0; k < xy.Count; k++)
            {
                Color color = SeriesColors[k % SeriesColors.Length];
                var marker = plot.Add.Scatter(new[] { xy[k].X }, new[] { xy[k].Y }, color);
                marker.LegendText = xy[k].Codec;
                marker.MarkerSize = 12;
                marker.MarkerShape = MarkerShapes[k % MarkerShapes.Length];
                marker.LineWidth = 0;
                var text = plot.Add.Text(xy[k].Codec, xy[k].X, xy[k].Y);
                text.LabelFontSize = PointLabelFontSize;
                text.LabelFontColor = color;
                // Points near the right edge (raw and lossless codecs at 16 bits) are labelled on their left. A
                // "+profile" point has its inline twin's quality a little to its right: its label goes below.
                bool labelLeft = xy[k].X > 12;
                bool below = xy[k].Codec.EndsWith("+profile", StringComparison.Ordinal);
                text.LabelAlignment = labelLeft ? (below ? Alignment.UpperRight : Alignment.LowerRight) : (below ? Alignment.UpperLeft : Alignment.LowerLeft);
                text.OffsetX = labelLeft ? -6 : 6;
                text.OffsetY = below ? 6 : -6;
            }

            if (double.IsFinite(panel.Baseline))
            {
                var line = plot.Add.HorizontalLine(panel.Baseline, 1.5f, Colors.Gray, LinePattern.Dashed);
                line.LegendText = "uncompressed (same run)";
            }

            double xHi = Math.Max(18, xy.Select(p => p.X).DefaultIfEmpty(16).Max() + 1);
            double yHi = xy.Select(p => p.Y).Append(double.IsFinite(panel.Baseline) ? panel.Baseline : 0).DefaultIfEmpty(1).Max();
            plot.Axes.SetLimits(0, xHi, 0, yHi > 0 ? yHi * 1.2 : 1);
            plot.ShowLegend(Alignment.UpperRight);
            StyleLegend(plot);

            int left = (int)MathF.Round(i * panelWidth);
            int right = (int)MathF.Round((i + 1) * panelWidth);
            using SKSurface panelSurface = CreateSurface(right - left, height - titleBand);
            plot.Render(panelSurface);
            using SKImage panelImage = panelSurface.Snapshot();
            canvas.DrawImage(panelImage, left, titleBand);
        }

        DrawTitle(canvas, title, width, titleBand);
        SavePng(surface, pngPath);
    }

    /// <summary>
    /// ScottPlot's own sans-serif detection falls back to SkiaSharp's default typeface, which on Debian with
    /// fonts-dejavu-core is DejaVu Serif; ask the font manager for a real sans-serif family instead.
    /// </summary>
    private static readonly Lazy<string> SansFont = new(() =>
    {
        string[] preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Open Sans", "Arial", "Helvetica", "Segoe UI"];
        foreach (string name in preferred)
        {
            using SKTypeface? match = SKFontManager.Default.MatchFamily(name);
            if (match is not null && string.Equals(match.FamilyName, name, StringComparison.OrdinalIgnoreCase))
            {
                return name;
            }
        }

        return Fonts.Default;
    });

    private static readonly MarkerShape[] MarkerShapes =
    [
        MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.OpenTriangleUp,
    ];

    private sealed record QualitySeries(string Name, bool IsBlendFamily, Color Color, MarkerShape Shape, List<(QualityPoint Point, string? Label)> Points)
    {
        public int FamilyIndex { get; init; }
    }

    /// <summary>Single modes first (in input order), then one series per blend variant family (in input order).</summary>
    private static List<QualitySeries> GroupQualitySeries(IReadOnlyList<QualityPoint> points)
    {
        var singles = new List<QualitySeries>();
        var families = new List<QualitySeries>();
        foreach (QualityPoint p in points)
        {
            if (TryParseBlend(p.Mode, out string family, out string ratio))
            {
                QualitySeries? s = families.Find(f => f.Name == family);
                if (s is null)
                {
                    s = new QualitySeries(family, true, default, MarkerShape.FilledCircle, []);
                    families.Add(s);
                }

                s.Points.Add((p, ratio));
            }
            else
            {
                singles.Add(new QualitySeries(p.Mode, false, default, MarkerShape.FilledCircle, [(p, p.Mode)]));
            }
        }

        // Blend families take the palette from the front; full and reuse are black and gray; any other single mode
        // takes the palette from the back, so the two rarely collide.
        var result = new List<QualitySeries>(singles.Count + families.Count);
        MarkerShape[] singleShapes = [MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown];
        int other = 0;
        for (int i = 0; i < singles.Count; i++)
        {
            Color color = singles[i].Name switch
            {
                "full" => Colors.Black,
                "reuse" => Color.FromHex("#7f7f7f"),
                _ => SeriesColors[SeriesColors.Length - 2 - (other++ % (SeriesColors.Length - 1))],
            };
            result.Add(singles[i] with { Color = color, Shape = singleShapes[i % singleShapes.Length] });
        }

        for (int i = 0; i < families.Count; i++)
        {
            families[i].Points.Sort((a, b) => a.Point.RecomputeFraction.CompareTo(b.Point.RecomputeFraction));
            result.Add(families[i] with { Color = SeriesColors[i % (SeriesColors.Length - 1)], Shape = MarkerShapes[i % MarkerShapes.Length], FamilyIndex = i });
        }

        return result;
    }

    /// <summary><c>blend:0.15</c> → family <c>blend</c>, ratio <c>0.15</c>; <c>blend:0.15:ref</c> → <c>blend:ref</c>, <c>0.15</c>.</summary>
    internal static bool TryParseBlend(string mode, out string family, out string ratio)
    {
        family = mode;
        ratio = "";
        if (!mode.StartsWith("blend", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (mode.Length == 5)
        {
            family = "blend";
            return true;
        }

        if (mode[5] != ':')
        {
            return false;
        }

        string rest = mode[6..];
        int colon = rest.IndexOf(':', StringComparison.Ordinal);
        ratio = colon < 0 ? rest : rest[..colon];
        string variant = colon < 0 ? "" : rest[(colon + 1)..];
        family = variant.Length == 0 ? "blend" : "blend:" + variant;
        return true;
    }

    private static void AddQualitySeries(Plot plot, QualitySeries s, List<(double X, double Y, string? Label)> xy, bool falling)
    {
        double[] xs = xy.Select(p => p.X).ToArray();
        double[] ys = xy.Select(p => p.Y).ToArray();
        var scatter = plot.Add.Scatter(xs, ys, s.Color);
        scatter.LegendText = s.Name;
        scatter.MarkerShape = s.Shape;
        scatter.MarkerSize = s.IsBlendFamily ? 9 : 13;
        scatter.LineWidth = s.IsBlendFamily ? 2 : 0;

        foreach (var (x, y, label) in xy)
        {
            if (string.IsNullOrEmpty(label))
            {
                continue;
            }

            // Single modes: label above the marker, on the side facing the middle of the plot so that full (at 1)
            // and reuse (at 0) are not clipped. Blend ratios go into the quadrants their own line leaves free
            // (above-right / below-left of a falling line, above-left / below-right of a rising one), alternating
            // between families so that similar curves do not print their ratios on top of each other.
            bool above = !s.IsBlendFamily || s.FamilyIndex % 2 == 0;
            bool toRight = s.IsBlendFamily ? above == falling : x < 0.5;
            var text = plot.Add.Text(label, x, y);
            text.LabelFontSize = s.IsBlendFamily ? PointLabelFontSize : PointLabelFontSize + 1;
            text.LabelFontColor = s.Color;
            text.LabelBold = !s.IsBlendFamily;
            text.LabelAlignment = (above, toRight) switch
            {
                (true, true) => Alignment.LowerLeft,
                (true, false) => Alignment.LowerRight,
                (false, true) => Alignment.UpperLeft,
                (false, false) => Alignment.UpperRight,
            };
            text.OffsetX = toRight ? 6 : -6;
            text.OffsetY = above ? -6 : 6;
        }
    }

    private static AxisLimits QualityLimits(List<Coordinates> all, bool fromZero, bool isAgreement)
    {
        double xLo = -0.08;
        double xHi = 1.06;
        if (all.Count == 0)
        {
            return new AxisLimits(xLo, xHi, 0, 1);
        }

        xLo = Math.Min(xLo, all.Min(c => c.X) - 0.08);
        xHi = Math.Max(xHi, all.Max(c => c.X) + 0.06);
        double yLo = all.Min(c => c.Y);
        double yHi = all.Max(c => c.Y);
        if (fromZero)
        {
            yLo = Math.Min(0, yLo);
        }

        if (isAgreement)
        {
            yHi = Math.Max(yHi, 1.0);
        }

        double span = yHi - yLo;
        if (span <= 0)
        {
            span = Math.Abs(yHi) > 0 ? Math.Abs(yHi) : 1;
        }

        // Extra headroom on top for the point labels.
        double bottom = fromZero && yLo >= 0 ? 0 : yLo - 0.06 * span;
        if (fromZero && yLo >= 0)
        {
            bottom = -0.03 * span;
        }

        return new AxisLimits(xLo, xHi, bottom, yHi + 0.14 * span);
    }

    /// <summary>The plot corner with the fewest data points, for an inside legend that hides as little as possible.</summary>
    private static Alignment EmptiestCorner(List<Coordinates> all, AxisLimits limits)
    {
        (Alignment Corner, bool Right, bool Top)[] corners =
        [
            (Alignment.UpperRight, true, true), (Alignment.UpperLeft, false, true),
            (Alignment.LowerRight, true, false), (Alignment.LowerLeft, false, false),
        ];
        Alignment best = Alignment.UpperRight;
        int bestCount = int.MaxValue;
        foreach (var (corner, right, top) in corners)
        {
            int count = all.Count(c =>
            {
                double fx = (c.X - limits.Left) / limits.HorizontalSpan;
                double fy = (c.Y - limits.Bottom) / limits.VerticalSpan;
                return (right ? fx > 0.55 : fx < 0.45) && (top ? fy > 0.55 : fy < 0.45);
            });
            if (count < bestCount)
            {
                best = corner;
                bestCount = count;
            }
        }

        return best;
    }

    private static Plot NewPlot(string title, string xLabel, string yLabel, float titleSize)
    {
        var plot = new Plot();
        plot.Font.Set(SansFont.Value);
        plot.Title(title, titleSize);
        plot.XLabel(xLabel, AxisLabelFontSize);
        plot.YLabel(yLabel, AxisLabelFontSize);
        plot.Axes.Bottom.TickLabelStyle.FontSize = TickLabelFontSize;
        plot.Axes.Left.TickLabelStyle.FontSize = TickLabelFontSize;
        plot.Grid.MajorLineColor = Colors.Black.WithAlpha(0.12);
        return plot;
    }

    private static void StyleLegend(Plot plot)
    {
        plot.Legend.FontSize = LegendFontSize;
        plot.Legend.BackgroundColor = Colors.White.WithAlpha(0.85);
        plot.Legend.OutlineColor = Colors.Black.WithAlpha(0.3);
    }

    private static double UpperLimit(IEnumerable<double> values)
    {
        double max = values.Where(double.IsFinite).DefaultIfEmpty(1).Max();
        return max > 0 ? max * 1.12 : 1;
    }

    private static ScottPlot.TickGenerators.NumericManual IntegerTicks(IEnumerable<double> values)
    {
        double[] distinct = values.Distinct().Order().ToArray();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        if (distinct.Length is > 0 and <= 12)
        {
            foreach (double v in distinct)
            {
                ticks.AddMajor(v, v.ToString(CultureInfo.InvariantCulture));
            }

            return ticks;
        }

        double lo = distinct.Length > 0 ? distinct[0] : 0;
        double hi = distinct.Length > 0 ? distinct[^1] : 10;
        double step = Math.Max(1, NiceStep((hi - lo) / 8));
        for (double v = Math.Floor(lo / step) * step; v <= hi; v += step)
        {
            ticks.AddMajor(v, v.ToString(CultureInfo.InvariantCulture));
        }

        return ticks;
    }

    private static double NiceStep(double raw)
    {
        if (raw <= 0)
        {
            return 1;
        }

        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double n = raw / magnitude;
        return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * magnitude;
    }

    /// <summary>
    /// Ticks for data plotted as log10(value): majors at 1-2-5 steps (or every integer mantissa when the range is
    /// narrow), minors at the remaining integer mantissas, labelled with the untransformed value.
    /// </summary>
    private static ScottPlot.TickGenerators.NumericManual Log10Ticks(double lo, double hi)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        int firstDecade = (int)Math.Floor(Math.Log10(lo)) - 1;
        int lastDecade = (int)Math.Ceiling(Math.Log10(hi)) + 1;
        double min = lo / 1.5;
        double max = hi * 1.5;
        var candidates = new List<double>();
        for (int d = firstDecade; d <= lastDecade; d++)
        {
            for (int m = 1; m <= 9; m++)
            {
                double v = m * Math.Pow(10, d);
                if (v >= min && v <= max)
                {
                    candidates.Add(v);
                }
            }
        }

        bool narrow = hi / lo < 8;
        foreach (double v in candidates)
        {
            double mantissa = Math.Round(v / Math.Pow(10, Math.Floor(Math.Log10(v) + 1e-9)));
            bool major = narrow || mantissa is 1 or 2 or 5;
            if (major)
            {
                ticks.AddMajor(Math.Log10(v), FormatMs(v));
            }
            else
            {
                ticks.AddMinor(Math.Log10(v));
            }
        }

        return ticks;
    }

    private static string FormatMs(double v) =>
        v >= 1 ? v.ToString("#,0.##", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);

    private static SKSurface CreateSurface(int width, int height) =>
        SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
        ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}x{height} raster surface.");

    private static void DrawTitle(SKCanvas canvas, string title, int width, int band)
    {
        if (string.IsNullOrEmpty(title))
        {
            return;
        }

        using SKTypeface typeface = SKTypeface.FromFamilyName(SansFont.Value, SKFontStyle.Bold) ?? SKTypeface.Default;
        using var font = new SKFont(typeface, TitleFontSize);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, width / 2f, band - 12, SKTextAlign.Center, font, paint);
    }

    private static void Save(Plot plot, string pngPath, int width, int height)
    {
        using SKSurface surface = CreateSurface(width, height);
        surface.Canvas.Clear(SKColors.White);
        plot.Render(surface.Canvas, new PixelRect(0, width, 0, height));
        SavePng(surface, pngPath);
    }

    private static void SavePng(SKSurface surface, string pngPath)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        using SKImage image = surface.Snapshot();
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100);
        using FileStream file = File.Create(pngPath);
        data.SaveTo(file);
    }
}
