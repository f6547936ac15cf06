using System.Net;
using KvFusion.Cache.Fusion;
using KvFusion.Server.Inference;
using KvFusion.TestSupport;

namespace KvFusion.Server.Tests.Endpoints;

/// <summary>The service's quality gate settings: a default floor for requests naming none, and a calibration file checked at start.</summary>
public sealed class QualityGateConfigurationTests(QualityGateConfigurationTests.Server server) : IClassFixture<QualityGateConfigurationTests.Server>, IDisposable
{
    private readonly TempDirectory _dir = new();

    /// <summary>A service whose floor no blend meets: every blend request is answered by full.</summary>
    public sealed class Server() : ServerFixture(new Dictionary<string, string?>
    {
        ["KvFusion:Quality:Floor"] = "0",
        ["KvFusion:Quality:Calibration"] = RepositoryRoot.Combine("tests", "data", "quality-calibration-tiny.json"),
    });

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public async Task The_configured_floor_applies_to_a_request_that_names_none_and_a_request_floor_overrides_it()
    {
        using var client = server.Client();
        using var created = await client.PostAsync("/v1/chunks", new { chunks = new[] { new { text = Api.UniqueText("gate") } } });
        var id = (await created.ReadJsonAsync()).GetProperty("chunks")[0].GetProperty("id").GetString();

        using var byDefault = await client.PostAsync("/v1/chat/completions", Api.Chat("What is it?", maxTokens: 2, kvfusion: new { chunks = new[] { id } }));
        Assert.Equal(HttpStatusCode.OK, byDefault.StatusCode);
        var quality = (await byDefault.ReadJsonAsync()).GetProperty("kvfusion").GetProperty("quality");
        Assert.Equal("fell_back_to_full", quality.GetProperty("decision").GetString());
        Assert.Equal(0, quality.GetProperty("floor").GetDouble());

        using var overridden = await client.PostAsync("/v1/chat/completions", Api.Chat("What is it?", maxTokens: 2, kvfusion: new { chunks = new[] { id }, quality_floor = 1000 }));
        Assert.Equal("passed", (await overridden.ReadJsonAsync()).GetProperty("kvfusion").GetProperty("quality").GetProperty("decision").GetString());
    }

    [SkippableFact]
    public void A_calibration_fitted_on_another_model_is_refused_at_start_with_the_reason()
    {
        var path = _dir.Combine("other.json");
        QualityCalibrationFile.Save(path, new QualityCalibration(0.3, 0.8), "other", new KvFusion.Engine.Models.ModelFingerprint("0000", "1111"), 10);
        using var factory = new KvFusionServerFactory(new Dictionary<string, string?> { ["KvFusion:Quality:Calibration"] = path });

        var e = Assert.ThrowsAny<Exception>(() => factory.CreateHttpClient());

        var refusal = Assert.IsType<ServedModelsException>(Unwrap(e));
        Assert.Contains("KvFusion:Quality:Calibration", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("fitted on other", refusal.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_negative_floor_is_refused_at_start()
    {
        using var factory = new KvFusionServerFactory(new Dictionary<string, string?> { ["KvFusion:Quality:Floor"] = "-1" });

        var e = Assert.ThrowsAny<Exception>(() => factory.CreateHttpClient());

        Assert.Contains("KvFusion:Quality", e.ToString(), StringComparison.Ordinal);
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is not ServedModelsException && e.InnerException is { } inner)
        {
            e = inner;
        }

        return e;
    }
}
