using KvFusion.Cuda.Interop;
using KvFusion.Cuda.Kernels;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>
/// The embedded kernels compiled by the installed NVRTC (no GPU needed): every module builds for Ampere and Hopper
/// and exports every kernel the backend launches. Skipped where NVRTC is not installed.
/// </summary>
public sealed class NvrtcCompilationTests
{
    public static TheoryData<string, string> ModulesAndArchitectures
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var source in KernelSources.All)
            {
                data.Add(source.Name, "sm_80");
                data.Add(source.Name, "sm_90");
            }

            return data;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(ModulesAndArchitectures))]
    public void Every_module_compiles_and_exports_every_listed_kernel(string module, string architecture)
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);

        var cubin = NvrtcTestEnvironment.Cubin(module, architecture);

        var functions = CubinSymbols.Functions(cubin).ToHashSet(StringComparer.Ordinal);
        var missing = KernelNames.ByModule[module].Where(name => !functions.Contains(name)).ToList();
        Assert.True(missing.Count == 0, $"{module}.cu for {architecture} does not export: {string.Join(", ", missing)}");
    }

    [SkippableFact]
    public void The_version_is_major_dot_minor()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);

        Assert.Matches(@"^\d+\.\d+$", NvrtcTestEnvironment.Compiler.Version);
    }

    [SkippableFact]
    public void The_options_name_the_architecture()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);

        Assert.Contains("--gpu-architecture=sm_86", NvrtcTestEnvironment.Compiler.Options("sm_86"));
        Assert.DoesNotContain("--gpu-architecture=sm_90", NvrtcTestEnvironment.Compiler.Options("sm_86"));
    }

    [SkippableFact]
    public void A_syntax_error_throws_naming_the_call_and_carrying_the_compiler_log()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);
        var broken = new KernelSource("broken_kernel", "extern \"C\" __global__ void broken(float* x) { x[0] = ; }\n", []);

        var e = Assert.Throws<CudaException>(() => NvrtcTestEnvironment.Compiler.Compile(broken, "sm_80"));

        Assert.StartsWith("nvrtcCompileProgram(broken_kernel.cu, sm_80)", e.Call, StringComparison.Ordinal);
        Assert.Equal("NVRTC_ERROR_COMPILATION", e.StatusName);
        Assert.Contains("nvrtcCompileProgram", e.Message, StringComparison.Ordinal);
        Assert.Contains("broken_kernel.cu", e.Message, StringComparison.Ordinal);
        Assert.Contains("error", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("no compiler log", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Headers_are_resolved_by_their_include_names()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);
        var source = new KernelSource(
            "with_header",
            "#include \"names.cuh\"\nextern \"C\" __global__ void KERNEL_NAME(float* x) { x[0] = 1.0f; }\n",
            [new KernelHeader("names.cuh", "#define KERNEL_NAME kernel_from_header\n")]);

        var cubin = NvrtcTestEnvironment.Compiler.Compile(source, "sm_80");

        Assert.Contains("kernel_from_header", CubinSymbols.Functions(cubin));
    }

    [SkippableFact]
    public void The_cubin_cache_with_NVRTC_returns_the_direct_compile_then_reads_it_back()
    {
        Skip.If(NvrtcTestEnvironment.SkipReason is not null, NvrtcTestEnvironment.SkipReason);
        using var temp = new TempDirectory();
        var cache = new CubinCache(temp.Path);
        var source = KernelSources.Get("norm");
        var direct = NvrtcTestEnvironment.Cubin("norm", "sm_80");

        var compiled = cache.GetOrCompile(source, "sm_80", NvrtcTestEnvironment.Compiler, out var firstFromCache);
        var cached = new CubinCache(temp.Path).GetOrCompile(source, "sm_80", NvrtcTestEnvironment.Compiler, out var secondFromCache);

        Assert.False(firstFromCache);
        Assert.True(secondFromCache);
        Assert.Equal(direct, compiled);
        Assert.Equal(direct, cached);
    }
}
