using System.Text.Json.Nodes;
using KvFusion.Diagnostics.Golden;
using KvFusion.Diagnostics.Tests.Support;

namespace KvFusion.Diagnostics.Tests.Golden;

[Collection(SharedModelsGroup.Name)]
public sealed class GoldenCheckTests(CpuModelFixture fixture)
{
    [SkippableTheory]
    [InlineData("tiny-pydocs", 12)]
    [InlineData("zoo/qwen3-qknorm", 4)]
    public void CpuEnginePassesEveryGoldenCaseOfAModel(string name, int expectedResults)
    {
        var model = fixture.Model(name);
        var results = GoldenCheck.Run(model, Path.Combine(SharedModels.Path(name), "golden.json"), 2e-3);

        Assert.Equal(expectedResults, results.Count);
        Assert.All(results, r => Assert.True(r.Passed, $"{r.Case}: {r.Detail}"));
    }

    [SkippableFact]
    public void ADoctoredLogitAndADoctoredGreedyTokenAreBothReported()
    {
        var model = fixture.Model("tiny-pydocs");
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(SharedModels.Path("tiny-pydocs"), "golden.json")))!;
        var first = golden["cases"]![0]!;
        var last = first["last_logits"]!.AsArray();
        last[17] = last[17]!.GetValue<double>() + 0.5;
        var greedy = first["greedy_next_24"]!.AsArray();
        greedy[3] = (greedy[3]!.GetValue<int>() + 1) % 4096;
        first["logits_at_positions"] = new JsonObject();
        golden["cases"] = new JsonArray(first.DeepClone());
        using var dir = new TempDirectory();
        var modelDir = Directory.CreateDirectory(dir.Combine("tiny-pydocs")).FullName;
        var path = Path.Combine(modelDir, "golden.json");
        File.WriteAllText(path, golden.ToJsonString());

        var results = GoldenCheck.Run(model, path, 2e-3);

        Assert.Equal(2, results.Count);
        var logits = results[0];
        Assert.False(logits.Passed);
        Assert.Contains("logit 17", logits.Detail, StringComparison.Ordinal);
        Assert.InRange(logits.MaxAbsError, 0.49, 0.51);
        var tokens = results[1];
        Assert.False(tokens.Passed);
        Assert.Contains("token 3", tokens.Detail, StringComparison.Ordinal);
        Assert.Equal("tiny-pydocs", logits.Model);
    }

    [Theory]
    [MemberData(nameof(NonFiniteLogits.Injections), MemberType = typeof(NonFiniteLogits))]
    public void ANonFiniteLogitAnywhereFailsTheLogitCheckAndIsNamed(float bad, int at)
    {
        var (expected, actual) = NonFiniteLogits.Row(bad, at);

        var result = GoldenCheck.Compare("m", "c", expected, actual, 2e-3);

        Assert.False(result.Passed);
        Assert.Contains($"logit {at}:", result.Detail, StringComparison.Ordinal);
    }
}
