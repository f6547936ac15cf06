using KvFusion.Cuda.Kernels;
using KvFusion.Cuda.Tests.Support;
using Microsoft.Extensions.Logging;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>
/// The on-disk cubin cache: keyed by source, architecture, compiler version and options; corrupt entries are
/// recompiled and replaced; an unwritable folder only costs the recompilation. (In the environment-variable
/// collection because some tests set <c>KVFUSION_CUBIN_CACHE</c>.)
/// </summary>
[Collection(EnvironmentVariablesGroup.Name)]
public sealed class CubinCacheTests : IDisposable
{
    private static readonly IReadOnlyList<KernelHeader> Headers = [new("defs.cuh", "#define KVF_TEST 1\n")];

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static KernelSource Source(string text = "extern \"C\" __global__ void k(float* x) { x[0] = KVF_TEST; }\n", string name = "test") =>
        new(name, text, Headers);

    [Fact]
    public void The_first_request_compiles_and_writes_the_entry()
    {
        var cache = new CubinCache(_temp.Path);
        var compiler = new FakeKernelCompiler();
        var source = Source();

        var cubin = cache.GetOrCompile(source, "sm_90", compiler, out var fromCache);

        Assert.False(fromCache);
        Assert.Equal(1, compiler.CompileCount);
        Assert.Equal(compiler.Expected(source, "sm_90"), cubin);
        var path = cache.PathFor(source, "sm_90", compiler);
        Assert.True(File.Exists(path));
        Assert.Equal(cubin, CubinCache.Decode(File.ReadAllBytes(path)));
    }

    [Fact]
    public void The_second_request_reads_the_entry_without_compiling()
    {
        var compiler = new FakeKernelCompiler();
        var source = Source();
        var first = new CubinCache(_temp.Path).GetOrCompile(source, "sm_80", compiler, out _);

        var second = new CubinCache(_temp.Path).GetOrCompile(source, "sm_80", compiler, out var fromCache);

        Assert.True(fromCache);
        Assert.Equal(1, compiler.CompileCount);
        Assert.Equal(first, second);
    }

    [Fact]
    public void The_entry_file_is_named_by_module_architecture_and_key()
    {
        var cache = new CubinCache(_temp.Path);
        var compiler = new FakeKernelCompiler();
        var source = Source();

        var path = cache.PathFor(source, "sm_90", compiler);

        Assert.Equal(_temp.Path, Path.GetDirectoryName(path));
        Assert.Equal($"test-sm_90-{CubinCache.Key(source, "sm_90", compiler)[..24]}.cubin", Path.GetFileName(path));
        Assert.Matches("^[0-9a-f]{64}$", CubinCache.Key(source, "sm_90", compiler));
    }

    [Fact]
    public void The_key_is_the_same_for_equal_inputs()
    {
        Assert.Equal(
            CubinCache.Key(Source(), "sm_90", new FakeKernelCompiler("12.8", "-lineinfo")),
            CubinCache.Key(Source(), "sm_90", new FakeKernelCompiler("12.8", "-lineinfo")));
    }

    [Theory]
    [InlineData("architecture")]
    [InlineData("compiler version")]
    [InlineData("options")]
    [InlineData("source text")]
    [InlineData("header text")]
    public void Changing_an_input_changes_the_key_and_file_and_compiles_again(string change)
    {
        var cache = new CubinCache(_temp.Path);
        var compiler = new FakeKernelCompiler("12.8");
        var source = Source();
        var architecture = "sm_90";
        var baseKey = CubinCache.Key(source, architecture, compiler);
        var basePath = cache.PathFor(source, architecture, compiler);
        cache.GetOrCompile(source, architecture, compiler, out _);

        switch (change)
        {
            case "architecture":
                architecture = "sm_80";
                break;
            case "compiler version":
                compiler = new FakeKernelCompiler("12.9");
                break;
            case "options":
                compiler = new FakeKernelCompiler("12.8", "-lineinfo");
                break;
            case "source text":
                source = Source("extern \"C\" __global__ void k(float* x) { x[0] = 2 * KVF_TEST; }\n");
                break;
            case "header text":
                source = new KernelSource(source.Name, source.Text, [new KernelHeader("defs.cuh", "#define KVF_TEST 2\n")]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(change), change, null);
        }

        Assert.NotEqual(baseKey, CubinCache.Key(source, architecture, compiler));
        Assert.NotEqual(basePath, cache.PathFor(source, architecture, compiler));
        var before = compiler.CompileCount;
        var cubin = cache.GetOrCompile(source, architecture, compiler, out var fromCache);
        Assert.False(fromCache);
        Assert.Equal(before + 1, compiler.CompileCount);
        Assert.Equal(compiler.Expected(source, architecture), cubin);
        Assert.Equal(2, Directory.GetFiles(_temp.Path, "*.cubin").Length);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("payload bit flipped")]
    [InlineData("checksum bit flipped")]
    [InlineData("length changed")]
    [InlineData("empty")]
    [InlineData("extra byte")]
    public void A_damaged_entry_is_recompiled_and_replaced(string damage)
    {
        var logger = new ListLogger();
        var cache = new CubinCache(_temp.Path, logger);
        var compiler = new FakeKernelCompiler();
        var source = Source();
        var expected = cache.GetOrCompile(source, "sm_90", compiler, out _);
        var path = cache.PathFor(source, "sm_90", compiler);
        var file = File.ReadAllBytes(path);
        file = damage switch
        {
            "truncated" => file[..(file.Length / 2)],
            "payload bit flipped" => Flip(file, file.Length - 1),
            "checksum bit flipped" => Flip(file, 20),
            "length changed" => Flip(file, 12),
            "empty" => [],
            "extra byte" => [.. file, 0],
            _ => throw new ArgumentOutOfRangeException(nameof(damage), damage, null),
        };
        File.WriteAllBytes(path, file);
        Assert.Null(CubinCache.Decode(file));

        var cubin = cache.GetOrCompile(source, "sm_90", compiler, out var fromCache);

        Assert.False(fromCache);
        Assert.Equal(2, compiler.CompileCount);
        Assert.Equal(expected, cubin);
        Assert.Equal(expected, CubinCache.Decode(File.ReadAllBytes(path)));
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(path, StringComparison.Ordinal));
        cache.GetOrCompile(source, "sm_90", compiler, out var fromCacheAfterRepair);
        Assert.True(fromCacheAfterRepair);
    }

    [Fact]
    public void Decode_rejects_a_file_with_the_wrong_magic()
    {
        var file = CubinCache.Encode([1, 2, 3, 4]);
        file[0] = (byte)'X';

        Assert.Null(CubinCache.Decode(file));
    }

    [Fact]
    public void Decode_rejects_a_file_of_another_format_version()
    {
        var file = CubinCache.Encode([1, 2, 3, 4]);
        file[8] = 2;

        Assert.Null(CubinCache.Decode(file));
    }

    [Fact]
    public void Decode_rejects_a_file_shorter_than_the_header()
    {
        var file = CubinCache.Encode([]);

        Assert.Null(CubinCache.Decode(file.AsSpan(0, file.Length - 1)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4093)]
    [InlineData(1 << 20)]
    public void Encode_and_decode_round_trip(int length)
    {
        var payload = new byte[length];
        new Random(length).NextBytes(payload);

        var file = CubinCache.Encode(payload);

        Assert.Equal("KVFCUBIN"u8.ToArray(), file[..8]);
        Assert.Equal(length + 52, file.Length);
        Assert.Equal(payload, CubinCache.Decode(file));
    }

    [Fact]
    public void An_unwritable_cache_folder_still_returns_the_compiled_cubin()
    {
        // A folder below a regular file cannot be created, even by root.
        var blocker = _temp.Combine("not-a-folder");
        File.WriteAllText(blocker, "x");
        var logger = new ListLogger();
        var cache = new CubinCache(Path.Combine(blocker, "cubin"), logger);
        var compiler = new FakeKernelCompiler();
        var source = Source();

        var first = cache.GetOrCompile(source, "sm_90", compiler, out var firstFromCache);
        var second = cache.GetOrCompile(source, "sm_90", compiler, out var secondFromCache);

        Assert.False(firstFromCache);
        Assert.False(secondFromCache);
        Assert.Equal(compiler.Expected(source, "sm_90"), first);
        Assert.Equal(first, second);
        Assert.Equal(2, compiler.CompileCount);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("cannot be written", StringComparison.Ordinal));
        Assert.Equal(["not-a-folder"], Directory.GetFileSystemEntries(_temp.Path).Select(f => Path.GetFileName(f)));
    }

    [Fact]
    public void A_missing_cache_folder_is_created()
    {
        var cache = new CubinCache(_temp.Combine(Path.Combine("a", "b", "cubin")));
        var compiler = new FakeKernelCompiler();

        cache.GetOrCompile(Source(), "sm_90", compiler, out _);

        Assert.True(File.Exists(cache.PathFor(Source(), "sm_90", compiler)));
    }

    [Fact]
    public void No_temporary_files_are_left_in_the_folder()
    {
        var cache = new CubinCache(_temp.Path);
        var compiler = new FakeKernelCompiler();
        var sources = Enumerable.Range(0, 4).Select(i => Source($"// variant {i}\n", $"m{i}")).ToList();
        foreach (var source in sources)
        {
            cache.GetOrCompile(source, "sm_90", compiler, out _);
        }

        File.WriteAllBytes(cache.PathFor(sources[0], "sm_90", compiler), [1, 2, 3]);
        foreach (var source in sources)
        {
            cache.GetOrCompile(source, "sm_90", compiler, out _);
        }

        var files = Directory.GetFiles(_temp.Path).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        var expected = sources.Select(s => Path.GetFileName(cache.PathFor(s, "sm_90", compiler))).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, files);
        Assert.Equal(5, compiler.CompileCount);
    }

    [Fact]
    public void The_default_folder_is_the_KVFUSION_CUBIN_CACHE_variable_when_set()
    {
        using var env = new EnvironmentScope()
            .Set(CubinCache.DirectoryVariable, _temp.Combine("from-variable"))
            .Set("XDG_CACHE_HOME", _temp.Combine("xdg"));

        Assert.Equal("KVFUSION_CUBIN_CACHE", CubinCache.DirectoryVariable);
        Assert.Equal(_temp.Combine("from-variable"), CubinCache.DefaultDirectory());
        Assert.Equal(_temp.Combine("from-variable"), new CubinCache().Directory);
    }

    [Fact]
    public void A_blank_KVFUSION_CUBIN_CACHE_falls_back_to_the_XDG_cache_folder()
    {
        using var env = new EnvironmentScope()
            .Set(CubinCache.DirectoryVariable, "  ")
            .Set("XDG_CACHE_HOME", _temp.Combine("xdg"));

        Assert.Equal(Path.Combine(_temp.Combine("xdg"), "kvfusion", "cubin"), CubinCache.DefaultDirectory());
    }

    [Fact]
    public void Without_either_variable_the_default_folder_is_under_the_home_cache()
    {
        using var env = new EnvironmentScope()
            .Set(CubinCache.DirectoryVariable, null)
            .Set("XDG_CACHE_HOME", null);

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "kvfusion", "cubin"), CubinCache.DefaultDirectory());
    }

    [Fact]
    public void An_explicit_folder_overrides_the_variable()
    {
        using var env = new EnvironmentScope().Set(CubinCache.DirectoryVariable, _temp.Combine("from-variable"));

        Assert.Equal(_temp.Combine("explicit"), new CubinCache(_temp.Combine("explicit")).Directory);
    }

    private static byte[] Flip(byte[] file, int index)
    {
        var copy = (byte[])file.Clone();
        copy[index] ^= 0x01;
        return copy;
    }
}
