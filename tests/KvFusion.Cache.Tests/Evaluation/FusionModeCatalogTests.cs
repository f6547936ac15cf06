using System.Globalization;
using KvFusion.Cache.Evaluation;
using KvFusion.Cache.Fusion;

namespace KvFusion.Cache.Tests.Evaluation;

/// <summary>Catalog descriptions follow the options they build; malformed mode strings are typed errors.</summary>
public sealed class FusionModeCatalogTests
{
    private const double R = 0.15;

    public static TheoryData<string> VariantNames() => [.. FusionModeCatalog.Variants.Keys];

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void A_description_names_exactly_the_criteria_its_options_enable(string variant)
    {
        var (mode, options) = FusionModeCatalog.Resolve(new FusionModeSpec(FusionMode.Blend, R, variant));
        Assert.Equal(FusionMode.Blend, mode);
        var description = FusionModeCatalog.Variants[variant];
        var parts = description.Split("; ");

        // The selection part lists every step of the built options, in order, and nothing else.
        var steps = options.Steps().Select(s => Clause(s, options));
        Assert.Equal(string.Join(", then ", steps), parts[0]);

        if (options.Steps()[0].Layer > 0)
        {
            Assert.Equal(options.ReuseLayerZero, parts.Contains("stored layer-0 K/V reused"));
            Assert.Equal(!options.ReuseLayerZero, parts.Contains("layer 0 recomputed for all tokens"));
        }
    }

    [Fact]
    public void L0gradualdev_is_described_by_the_criterion_it_runs()
    {
        var (_, options) = FusionModeCatalog.Resolve(new FusionModeSpec(FusionMode.Blend, R, "l0gradualdev"));
        Assert.Equal(SelectionCriterion.DeviationTimesAttention, options.Steps()[1].Criterion);
        Assert.Contains("K+V deviation × query attention at layer 1 keeps r", FusionModeCatalog.Variants["l0gradualdev"], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("blend:0.15:bogus", "bogus")]
    [InlineData("fast", "fast")]
    [InlineData("", "")]
    [InlineData("blend:abc", "abc")]
    [InlineData("blend:", "")]
    [InlineData("blend:0", "0")]
    [InlineData("blend:1.5", "1.5")]
    [InlineData("blend:-0.1", "-0.1")]
    [InlineData("blend:NaN", "NaN")]
    [InlineData("reuse:0.2", "0.2")]
    [InlineData("full:0.5:ref", "0.5")]
    [InlineData("blend:0.15:", "")]
    [InlineData("blend:0.15:ref:extra", "extra")]
    public void A_malformed_mode_string_is_an_invalid_request_naming_the_bad_part(string text, string badPart)
    {
        var e = Assert.Throws<FusionException>(() => FusionModeSpec.Parse(text));
        Assert.Equal(FusionError.InvalidRequest, e.Error);
        Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{badPart}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("full, prefix, reuse, share, share:RANGES, blend, blend:R, blend:R:VARIANT", e.Message, StringComparison.Ordinal);
        Assert.All(FusionModeCatalog.Variants.Keys, v => Assert.Contains(v, e.Message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("blend:0.15+share:0-3", "blend:0.15+share:0-3")]
    [InlineData("blend:0.3:gradual+share:none", "blend:0.3:gradual+share:none")]
    [InlineData("blend+share:1,4-5", "blend:0.15+share:1,4-5")]
    public void Blend_over_shared_caches_parses_and_prints_back(string text, string printed)
    {
        var spec = FusionModeSpec.Parse(text);
        Assert.Equal(FusionMode.Blend, spec.Mode);
        Assert.NotNull(spec.Recompute);
        Assert.Equal(printed, spec.ToString());
        Assert.Equal(spec, FusionModeSpec.Parse(printed));
    }

    [Theory]
    [InlineData("reuse+share:0-1", "reuse")]
    [InlineData("share:1+share:0-1", "share:1")]
    [InlineData("blend:0.15+share:3-1", "3-1")]
    public void Only_blend_combines_with_share_and_its_ranges_must_parse(string text, string badPart)
    {
        var e = Assert.Throws<FusionException>(() => FusionModeSpec.Parse(text));
        Assert.Equal(FusionError.InvalidRequest, e.Error);
        Assert.Contains(badPart, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolving_an_unknown_variant_is_an_invalid_request()
    {
        var e = Assert.Throws<FusionException>(() => FusionModeCatalog.Resolve(new FusionModeSpec(FusionMode.Blend, R, "bogus")));
        Assert.Equal(FusionError.InvalidRequest, e.Error);
        Assert.Contains("'bogus'", e.Message, StringComparison.Ordinal);
    }

    private static string Clause(SelectionStep step, BlendOptions options)
    {
        var target = options.Deviation switch
        {
            DeviationTarget.Key => "K",
            DeviationTarget.Value => "V",
            _ => "K+V",
        };
        var criterion = (step.Criterion ?? options.Criterion) switch
        {
            SelectionCriterion.Deviation => $"{target} deviation",
            SelectionCriterion.QueryAttention => "query attention",
            _ => $"{target} deviation × query attention",
        };
        var multiple = Math.Round(step.Ratio / R, 6);
        var keeps = multiple == 1 ? "r" : string.Create(CultureInfo.InvariantCulture, $"{multiple}r");
        return $"{criterion} at layer {step.Layer} keeps {keeps}";
    }
}
