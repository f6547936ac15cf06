using KvFusion.Cli.Plotting;
using SkiaSharp;

namespace KvFusion.Cli.Tests.Plotting;

public sealed class FusionChartsTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void QualityVersusRecompute_writes_a_three_panel_png()
    {
        QualityPoint[] points =
        [
            new("full", 1.0, 0.0, 1.0, 1.0),
            new("reuse", 0.0, 0.42, 0.71, 0.12),
            new("blend:0.05", 0.07, 0.21, 0.82, 0.17),
            new("blend:0.15", 0.17, 0.09, 0.91, 0.26),
            new("blend:0.3", 0.32, 0.04, 0.95, 0.41),
            new("blend:0.5", 0.52, 0.02, 0.97, 0.62),
            new("blend:0.15:ref", 0.18, 0.06, 0.93, 0.30),
            new("blend:0.05:ref", 0.08, 0.15, 0.86, 0.19),
            new("blend:0.3:ref", 0.33, 0.03, 0.96, 0.45),
        ];
        string path = Path.Combine(_temp.Path, "quality.png");

        FusionCharts.QualityVersusRecompute(path, "tiny-pydocs: quality vs recompute (8 chunks, 2,048 tokens)", points);

        AssertPng(path, 1400, 500);
    }

    [Fact]
    public void TtftByChunks_writes_a_png()
    {
        List<TtftPoint> points = [];
        foreach (int chunks in new[] { 1, 2, 4, 8, 16, 32 })
        {
            points.Add(new TtftPoint("full", chunks, 180.0 * chunks));
            points.Add(new TtftPoint("reuse", chunks, 6.0 + 0.8 * chunks));
            points.Add(new TtftPoint("blend:0.15", chunks, 12.0 + 0.15 * 180.0 * chunks));
        }

        string path = Path.Combine(_temp.Path, "ttft.png");

        FusionCharts.TtftByChunks(path, "TTFT by number of chunks (256 tokens each)", points);

        AssertPng(path, 1000, 600);
    }

    [Fact]
    public void EngineThroughput_writes_a_png()
    {
        (int, double, double)[] points =
        [
            (128, 2400, 61), (256, 2900, 60), (512, 3100, 58), (1024, 3000, 55), (2048, 2700, 50), (4096, 2200, 43),
        ];
        string path = Path.Combine(_temp.Path, "engine.png");

        FusionCharts.EngineThroughput(path, "Engine throughput (tiny-pydocs, CPU)", points);

        AssertPng(path, 1000, 600);
    }

    [Fact]
    public void Charts_with_no_points_still_render()
    {
        FusionCharts.QualityVersusRecompute(Path.Combine(_temp.Path, "q0.png"), "empty", []);
        FusionCharts.TtftByChunks(Path.Combine(_temp.Path, "t0.png"), "empty", []);
        FusionCharts.EngineThroughput(Path.Combine(_temp.Path, "e0.png"), "empty", []);

        Assert.True(File.Exists(Path.Combine(_temp.Path, "q0.png")));
        Assert.True(File.Exists(Path.Combine(_temp.Path, "t0.png")));
        Assert.True(File.Exists(Path.Combine(_temp.Path, "e0.png")));
    }

    [Fact]
    public void The_chart_font_is_installed_and_has_latin_glyphs()
    {
        // SkiaSharp's NoDependencies native build does not use fontconfig: it scans /usr/share/fonts itself. With no
        // font there it still reports one (empty) family, and every label renders blank while the lines still draw.
        // Debian/Ubuntu: apt-get install fonts-dejavu-core.
        string family = ScottPlot.Fonts.Default;
        using SKTypeface? typeface = SKFontManager.Default.MatchFamily("DejaVu Sans") ?? SKTypeface.FromFamilyName(family);
        Assert.NotNull(typeface);
        using var font = new SKFont(typeface, 12);
        Assert.True(
            typeface.FamilyName.Length > 0 && font.ContainsGlyphs("Mean KL top-1 TTFT 0123456789.,:()"),
            $"no usable font for chart text (got '{typeface.FamilyName}'); install fonts-dejavu-core so /usr/share/fonts has one");
    }

    [Theory]
    [InlineData("blend:0.15", "blend", "0.15")]
    [InlineData("blend:0.3", "blend", "0.3")]
    [InlineData("blend:0.15:ref", "blend:ref", "0.15")]
    [InlineData("blend", "blend", "")]
    public void Blend_modes_group_by_the_part_after_the_ratio(string mode, string family, string ratio)
    {
        Assert.True(FusionCharts.TryParseBlend(mode, out string f, out string r));
        Assert.Equal(family, f);
        Assert.Equal(ratio, r);
    }

    [Theory]
    [InlineData("full")]
    [InlineData("reuse")]
    [InlineData("blender")]
    public void Other_modes_are_not_blend(string mode) => Assert.False(FusionCharts.TryParseBlend(mode, out _, out _));

    private static void AssertPng(string path, int width, int height)
    {
        Assert.True(File.Exists(path), $"{path} was not written");
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 10 * 1024, $"{path} is only {bytes.Length} bytes");
        Assert.Equal(PngSignature, bytes[..PngSignature.Length]);

        using SKBitmap bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.Equal(width, bitmap.Width);
        Assert.Equal(height, bitmap.Height);

        // Not a single color, and enough dark pixels that text and lines were drawn.
        SKColor first = bitmap.GetPixel(0, 0);
        int differing = 0;
        int dark = 0;
        for (int y = 0; y < bitmap.Height; y += 2)
        {
            for (int x = 0; x < bitmap.Width; x += 2)
            {
                SKColor c = bitmap.GetPixel(x, y);
                if (c != first)
                {
                    differing++;
                }

                if (c.Red + c.Green + c.Blue < 200)
                {
                    dark++;
                }
            }
        }

        Assert.True(differing > 500, $"{path}: only {differing} sampled pixels differ from the background");
        Assert.True(dark > 200, $"{path}: only {dark} sampled dark pixels; text or axes are missing");
    }
}
