using System.Text.Json;
using KvFusion.Cache.Fusion;
using KvFusion.TestSupport;

namespace KvFusion.Cli.Tests.Commands;

/// <summary><c>kvfusion eval fusion</c>'s quality gate: estimates per case, calibration statistics, a fitted calibration, a floor.</summary>
public sealed class EvalFusionCommandTests
{
    private static readonly string Cases = RepositoryRoot.Combine("tests", "data", "fusion-cases-mini.jsonl");

    [SkippableFact]
    public async Task Eval_fusion_reports_the_estimate_per_case_and_fits_a_calibration_it_can_load_again()
    {
        using var temp = new TempDirectory();
        var calibration = temp.Combine("cal.json");
        var fit = await Kvfusion.RunAsync(
            "eval", "fusion", "--model", SharedModels.Path("tiny-pydocs"), "--cases", Cases, "--modes", "full,reuse,blend:0.15,blend:0.6",
            "--ttft-runs", "1", "--out", temp.Combine("fit"), "--calibrate", calibration);

        Assert.True(fit.ExitCode == 0, fit.StandardError);
        using (var doc = JsonDocument.Parse(File.ReadAllBytes(temp.Combine("fit", "summary.json"))))
        {
            var modes = doc.RootElement.GetProperty("modes").EnumerateArray().ToList();
            var blend = Assert.Single(modes, m => m.GetProperty("mode").GetString() == "blend:0.15");
            var cases = blend.GetProperty("cases").EnumerateArray().ToList();
            Assert.Equal(3, cases.Count);
            Assert.All(cases, c =>
            {
                Assert.True(c.GetProperty("estimated_kl").GetDouble() > 0);
                Assert.Equal("unchecked", c.GetProperty("decision").GetString());
                Assert.Equal(JsonValueKind.Number, c.GetProperty("mean_kl").ValueKind);
            });

            // Reuse has no estimate; the gate's table has both blend modes and their pool.
            var reuse = Assert.Single(modes, m => m.GetProperty("mode").GetString() == "reuse");
            Assert.All(reuse.GetProperty("cases").EnumerateArray(), c => Assert.False(c.TryGetProperty("estimated_kl", out _)));
            var gate = doc.RootElement.GetProperty("quality_gate").EnumerateArray().Select(g => g.GetProperty("mode").GetString()).ToList();
            Assert.Equal(["blend:0.15", "blend:0.6", "all blend modes"], gate);
        }

        var loaded = QualityCalibrationFile.Load(calibration);
        Assert.True(loaded.Scale > 0 && loaded.Exponent > 0);

        // With the fitted calibration and a floor of 0 nothing passes: every blend case falls back to full.
        var gated = await Kvfusion.RunAsync(
            "eval", "fusion", "--model", SharedModels.Path("tiny-pydocs"), "--cases", Cases, "--modes", "full,blend:0.15",
            "--ttft-runs", "1", "--out", temp.Combine("gated"), "--calibration", calibration, "--floor", "0");

        Assert.True(gated.ExitCode == 0, gated.StandardError);
        using var gatedDoc = JsonDocument.Parse(File.ReadAllBytes(temp.Combine("gated", "summary.json")));
        var summary = gatedDoc.RootElement.GetProperty("quality_gate")[0];
        Assert.Equal(3, summary.GetProperty("fell_back").GetInt32());
        Assert.Equal(0, summary.GetProperty("let_through_above_floor").GetInt32());
        var blendGated = gatedDoc.RootElement.GetProperty("modes").EnumerateArray().Single(m => m.GetProperty("mode").GetString() == "blend:0.15");
        Assert.Equal(0, blendGated.GetProperty("mean_kl").GetDouble(), 4);
    }

    [SkippableFact]
    public async Task A_calibration_of_another_model_is_refused_with_the_reason()
    {
        using var temp = new TempDirectory();
        var calibration = temp.Combine("other.json");
        QualityCalibrationFile.Save(calibration, new QualityCalibration(0.3, 0.8), "other", new KvFusion.Engine.Models.ModelFingerprint("00", "11"), 3);

        var run = await Kvfusion.RunAsync(
            "eval", "fusion", "--model", SharedModels.Path("tiny-pydocs"), "--cases", Cases, "--modes", "full,blend:0.15", "--calibration", calibration);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("fitted on other", run.StandardError, StringComparison.Ordinal);
    }
}
