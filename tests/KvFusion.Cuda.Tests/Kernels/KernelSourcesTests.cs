using System.Text;
using KvFusion.Cuda.Kernels;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>The kernel sources embedded in the assembly match the files in the repository's kernels/ folder and hash stably.</summary>
public sealed class KernelSourcesTests
{
    [Fact]
    public void Every_module_is_embedded_in_name_order()
    {
        Assert.Equal(["attention", "elementwise", "norm", "selection"], KernelSources.All.Select(s => s.Name));
    }

    [Fact]
    public void Every_module_carries_the_prelude_header()
    {
        foreach (var source in KernelSources.All)
        {
            var prelude = Assert.Single(source.Headers, h => h.Name == "prelude.cuh");
            Assert.Contains("kvf_report", prelude.Text, StringComparison.Ordinal);
            Assert.Contains("#include \"prelude.cuh\"", source.Text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_cu_file_on_disk_is_embedded_with_identical_text()
    {
        var files = Directory.GetFiles(RepositoryRoot.KernelDirectory, "*.cu");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var name = Path.GetFileNameWithoutExtension(file);
            Assert.Equal(File.ReadAllText(file, Encoding.UTF8), KernelSources.Get(name).Text);
        }

        Assert.Equal(files.Length, KernelSources.All.Count);
    }

    [Fact]
    public void Every_cuh_file_on_disk_is_embedded_with_identical_text()
    {
        var files = Directory.GetFiles(RepositoryRoot.KernelDirectory, "*.cuh");
        Assert.NotEmpty(files);
        foreach (var source in KernelSources.All)
        {
            Assert.Equal(files.Length, source.Headers.Count);
            foreach (var file in files)
            {
                var header = Assert.Single(source.Headers, h => h.Name == Path.GetFileName(file));
                Assert.Equal(File.ReadAllText(file, Encoding.UTF8), header.Text);
            }
        }
    }

    [Fact]
    public void The_file_name_is_the_module_name_with_the_cu_extension()
    {
        Assert.Equal("norm.cu", KernelSources.Get("norm").FileName);
    }

    [Fact]
    public void Asking_for_an_unknown_module_throws_naming_it()
    {
        var e = Assert.Throws<KeyNotFoundException>(() => KernelSources.Get("softmax"));

        Assert.Contains("softmax", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_hash_is_64_lowercase_hex_characters()
    {
        foreach (var source in KernelSources.All)
        {
            Assert.Matches("^[0-9a-f]{64}$", source.Hash);
        }
    }

    [Fact]
    public void The_hash_is_stable_for_the_same_name_text_and_headers()
    {
        var embedded = KernelSources.Get("selection");

        var rebuilt = new KernelSource(embedded.Name, embedded.Text, [.. embedded.Headers]);

        Assert.Equal(embedded.Hash, rebuilt.Hash);
    }

    [Fact]
    public void The_hash_differs_between_modules()
    {
        var hashes = KernelSources.All.Select(s => s.Hash).ToList();

        Assert.Equal(hashes.Count, hashes.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void The_hash_covers_the_name_the_text_and_every_header()
    {
        var headers = new List<KernelHeader> { new("a.cuh", "#define A 1") };
        var baseline = new KernelSource("m", "__global__ void k() {}", headers).Hash;

        Assert.NotEqual(baseline, new KernelSource("n", "__global__ void k() {}", headers).Hash);
        Assert.NotEqual(baseline, new KernelSource("m", "__global__ void k() { }", headers).Hash);
        Assert.NotEqual(baseline, new KernelSource("m", "__global__ void k() {}", [new KernelHeader("a.cuh", "#define A 2")]).Hash);
        Assert.NotEqual(baseline, new KernelSource("m", "__global__ void k() {}", [new KernelHeader("b.cuh", "#define A 1")]).Hash);
        Assert.NotEqual(baseline, new KernelSource("m", "__global__ void k() {}", []).Hash);
    }
}
