using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;
using KvFusion.Engine.Models;

namespace KvFusion.Cache.Tests.Fusion;

/// <summary>The calibration of blend's quality signal: a conservative power-law fit, its file, and rank correlation.</summary>
public sealed class QualityCalibrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvf-calibration-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_fit_recovers_a_power_law_and_bounds_every_case_from_above()
    {
        var pairs = new List<(double, double)>();
        var noise = new[] { 1.0, 1.3, 0.8, 1.1, 0.9, 1.2 };
        for (var i = 0; i < noise.Length; i++)
        {
            var signal = 0.01 * (i + 1);
            pairs.Add((signal, 2.0 * Math.Pow(signal, 0.7) * noise[i]));
        }

        var fit = QualityCalibration.Fit(pairs);

        Assert.InRange(fit.Exponent, 0.5, 0.9);
        foreach (var (signal, kl) in pairs)
        {
            Assert.True(fit.Estimate(signal) >= kl * (1 - 1e-9), $"estimate {fit.Estimate(signal)} below KL {kl} at {signal}");
        }

        Assert.Equal(0.05, fit.SignalFor(fit.Estimate(0.05)), 9);
        Assert.Equal(0, fit.Estimate(0));
    }

    [Fact]
    public void A_fit_needs_three_cases_whose_signals_vary()
    {
        Assert.Throws<ArgumentException>(() => QualityCalibration.Fit([(0.1, 0.2), (0.2, 0.3)]));
        Assert.Throws<ArgumentException>(() => QualityCalibration.Fit([(0.1, 0.2), (0.1, 0.3), (0.1, 0.25)]));
    }

    [Fact]
    public void A_calibration_file_round_trips_and_is_refused_for_another_model()
    {
        var path = Path.Combine(_dir, "cal.json");
        var model = new ModelFingerprint("model-a", "tok-a");
        QualityCalibrationFile.Save(path, new QualityCalibration(1.5, 0.6), "a", model, 24);

        Assert.Equal(new QualityCalibration(1.5, 0.6), QualityCalibrationFile.Load(path, model));
        var e = Assert.Throws<FusionException>(() => QualityCalibrationFile.Load(path, new ModelFingerprint("model-b", "tok-a")));
        Assert.Contains("fitted on a", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("{\"format\":1,\"scale\":1}")]
    [InlineData("{\"format\":2,\"scale\":1,\"exponent\":1}")]
    [InlineData("{\"format\":1,\"scale\":-1,\"exponent\":1}")]
    public void A_malformed_calibration_file_is_refused_with_its_path(string json)
    {
        var path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, json);

        var e = Assert.Throws<FusionException>(() => QualityCalibrationFile.Load(path));

        Assert.Equal(FusionError.InvalidRequest, e.Error);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_built_in_calibration_is_the_committed_tiny_pydocs_fit()
    {
        var committed = QualityCalibrationFile.Load(RepositoryRoot.Combine("tests", "data", "quality-calibration-tiny.json"));
        Assert.Equal(committed, FusionEngineOptions.DefaultQualityCalibration);
    }

    [Fact]
    public void Spearman_is_one_for_a_monotone_relation_minus_one_reversed_and_handles_ties()
    {
        double[] x = [1, 2, 3, 4, 5];
        Assert.Equal(1, QualityGateStatistics.Spearman(x, [1, 4, 9, 16, 25]), 9);
        Assert.Equal(-1, QualityGateStatistics.Spearman(x, [5, 4, 3, 2, 1]), 9);
        Assert.Equal(0.975, QualityGateStatistics.Spearman(x, [1, 2, 2, 4, 5]), 3);
        Assert.True(double.IsNaN(QualityGateStatistics.Spearman(x, [1, 1, 1, 1, 1])));
        Assert.True(double.IsNaN(QualityGateStatistics.Spearman([1, 2], [1, 2])));
    }
}
