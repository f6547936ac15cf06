using System.Text.RegularExpressions;
using KvFusion.Cuda.Kernels;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>The kernel names the backend launches are defined in the module sources it names.</summary>
public sealed partial class KernelNamesTests
{
    [GeneratedRegex(@"^(?<family>attention_[a-z_]+_hd)(?<hd>\d+)$")]
    private static partial Regex AttentionName();

    [GeneratedRegex(@"^KVF_ATTENTION_KERNELS\((?<hd>\d+)\)", RegexOptions.Multiline)]
    private static partial Regex AttentionInstantiation();

    [Fact]
    public void Every_listed_module_is_embedded_and_every_embedded_module_is_listed()
    {
        var listed = KernelNames.ByModule.Keys.Order(StringComparer.Ordinal);
        var embedded = KernelSources.All.Select(s => s.Name).Order(StringComparer.Ordinal);

        Assert.Equal(embedded, listed);
    }

    [Fact]
    public void Every_module_lists_kernels_and_no_name_is_listed_twice()
    {
        var all = KernelNames.ByModule.Values.SelectMany(n => n).ToList();

        Assert.All(KernelNames.ByModule.Values, Assert.NotEmpty);
        Assert.Equal(all.Count, all.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Every_plain_kernel_is_declared_extern_C_in_its_module()
    {
        foreach (var (module, names) in KernelNames.ByModule)
        {
            if (module == "attention")
            {
                continue;
            }

            var text = KernelSources.Get(module).Text;
            foreach (var name in names)
            {
                Assert.True(
                    text.Contains($"extern \"C\" __global__ void {name}(", StringComparison.Ordinal),
                    $"{module}.cu does not declare extern \"C\" __global__ void {name}(");
            }
        }
    }

    [Fact]
    public void Every_attention_kernel_comes_from_an_instantiation_of_the_attention_macro()
    {
        var text = KernelSources.Get("attention").Text;
        foreach (var name in KernelNames.ByModule["attention"])
        {
            var match = AttentionName().Match(name);
            Assert.True(match.Success, $"'{name}' is not named attention_<kind>_hd<dim>");
            var family = match.Groups["family"].Value;
            var hd = match.Groups["hd"].Value;
            Assert.Contains($"{family}##HD(", text, StringComparison.Ordinal);
            Assert.Matches($"(?m)^KVF_ATTENTION_KERNELS\\({hd}\\)", text);
        }
    }

    [Fact]
    public void The_attention_macro_is_instantiated_for_exactly_the_listed_head_dims()
    {
        var text = KernelSources.Get("attention").Text;

        var instantiated = AttentionInstantiation().Matches(text).Select(m => int.Parse(m.Groups["hd"].Value, System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(KernelNames.AttentionHeadDims.Order(), instantiated.Order());
        Assert.Contains("#define KVF_ATTENTION_KERNELS(HD)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_attention_names_of_a_head_dim_are_listed_for_every_head_dim()
    {
        var attention = KernelNames.ByModule["attention"];
        foreach (var hd in KernelNames.AttentionHeadDims)
        {
            var (prefill, decode, combine, keyWeights) = KernelNames.Attention(hd);
            Assert.Equal($"attention_prefill_hd{hd}", prefill);
            Assert.Equal($"attention_decode_hd{hd}", decode);
            Assert.Equal($"attention_combine_hd{hd}", combine);
            Assert.Equal($"attention_key_weights_hd{hd}", keyWeights);
            Assert.Contains(prefill, attention);
            Assert.Contains(decode, attention);
            Assert.Contains(combine, attention);
            Assert.Contains(keyWeights, attention);
        }

        Assert.Equal(4 * KernelNames.AttentionHeadDims.Count, attention.Count);
    }
}
