using KvFusion.Cache.Container;
using KvFusion.Cache.Sharing;

namespace KvFusion.Cache.Tests.Sharing;

/// <summary>E-caches rounded to a lower precision keep their shape and stay within that precision's error.</summary>
public sealed class HiddenStateRoundingTests
{
    private const int Tokens = 7;
    private const int Hidden = 64;

    [Fact]
    public void Fp16_is_the_e_cache_as_computed()
    {
        var states = States();
        Assert.Same(states, HiddenStateRounding.Round(states, HiddenStatePrecision.Fp16));
    }

    [Theory]
    [InlineData(HiddenStatePrecision.Bf16, 1.0 / 256)]
    [InlineData(HiddenStatePrecision.Fp8, 1.0 / 8)]
    public void Rounding_keeps_layers_and_shape_and_each_value_within_the_precisions_step(HiddenStatePrecision precision, double relative)
    {
        var states = States();
        var rounded = HiddenStateRounding.Round(states, precision);
        Assert.Equal(states.Layers, rounded.Layers);
        Assert.Equal(states.TokenCount, rounded.TokenCount);
        Assert.Equal(states.HiddenSize, rounded.HiddenSize);
        var changed = 0;
        for (var i = 0; i < states.Layers.Count; i++)
        {
            var a = states.State(i).ToArray();
            var b = rounded.State(i).ToArray();
            for (var t = 0; t < Tokens; t++)
            {
                // fp8 scales per token, so its error is relative to the token's largest magnitude.
                var max = 0f;
                for (var c = 0; c < Hidden; c++)
                {
                    max = Math.Max(max, Math.Abs((float)a[(t * Hidden) + c]));
                }

                for (var c = 0; c < Hidden; c++)
                {
                    var (x, y) = ((float)a[(t * Hidden) + c], (float)b[(t * Hidden) + c]);
                    var bound = precision == HiddenStatePrecision.Fp8 ? relative * max : (relative * Math.Abs(x)) + 1e-7;
                    Assert.True(Math.Abs(x - y) <= bound, $"{precision}: {x} became {y}");
                    changed += x == y ? 0 : 1;
                }
            }
        }

        Assert.True(changed > 0, "rounding changed no value");
    }

    [Theory]
    [InlineData("fp16", HiddenStatePrecision.Fp16)]
    [InlineData(" BF16 ", HiddenStatePrecision.Bf16)]
    [InlineData("fp8", HiddenStatePrecision.Fp8)]
    public void Names_parse(string text, HiddenStatePrecision expected) => Assert.Equal(expected, HiddenStateRounding.Parse(text));

    [Fact]
    public void An_unknown_precision_is_refused_with_the_valid_names()
    {
        var e = Assert.Throws<FormatException>(() => HiddenStateRounding.Parse("int4"));
        Assert.Contains("'int4' (fp16, bf16, fp8)", e.Message, StringComparison.Ordinal);
    }

    private static KvHiddenStates States()
    {
        var random = new Random(5);
        var layers = new[] { 1, 3 };
        var states = new Half[layers.Length][];
        for (var i = 0; i < layers.Length; i++)
        {
            states[i] = new Half[Tokens * Hidden];
            for (var j = 0; j < states[i].Length; j++)
            {
                states[i][j] = (Half)((random.NextDouble() - 0.5) * 20 * (1 + (j % 5)));
            }
        }

        return new KvHiddenStates(Tokens, Hidden, layers, states);
    }
}
