using KvFusion.Cuda.Backend;
using KvFusion.Cuda.Tests.Support;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Diagnostics;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>Every GPU operation against the CPU backend, and the golden model outputs on the GPU. Skipped without a GPU.</summary>
public sealed class CudaConformanceTests : IClassFixture<CudaBackendFixture>
{
    private readonly CudaBackendFixture _fixture;

    public CudaConformanceTests(CudaBackendFixture fixture) => _fixture = fixture;

    private CudaBackend Backend
    {
        get
        {
            Skip.If(CudaTestEnvironment.SkipReason is not null, CudaTestEnvironment.SkipReason);
            return _fixture.Backend;
        }
    }

    [SkippableFact]
    public void Every_operation_matches_the_cpu_backend_and_writes_every_output_element()
    {
        var backend = Backend;
        using var reference = new CpuBackend();
        using var dir = new TempDirectory();
        using var conformance = new BackendConformance(backend, reference, dir.Path);
        var failed = conformance.RunAll().Where(r => !r.Passed)
            .Select(r => $"{r.Operation} {r.Case}: rel {r.RelativeError:G3} (limit {r.Tolerance:G3}), unwritten {r.Unwritten} {r.Failure}")
            .ToList();
        Assert.Empty(failed);
    }

    [SkippableFact]
    public void Tiny_pydocs_reproduces_the_golden_logits_and_greedy_tokens_with_float32_weights()
    {
        Skip.If(CudaTestEnvironment.SkipReason is not null, CudaTestEnvironment.SkipReason);
        var model = SharedModelPath("tiny-pydocs");
        using var backend = CudaBackend.Create(new CudaBackendOptions
        {
            CubinCacheDirectory = CudaTestEnvironment.CubinCacheDirectory,
            WeightPrecision = CudaWeightPrecision.Float32,
        });
        using var m = TransformerModel.Load(model, backend);
        var results = GoldenCheck.Run(m, Path.Combine(model, "golden.json"), 2e-3);
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.True(r.Passed, $"{r.Case}: {r.Detail}"));
    }

    private static string SharedModelPath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "models", name);
            if (File.Exists(Path.Combine(candidate, "golden.json")))
            {
                return candidate;
            }
        }

        throw new SkipException("../shared/models is not present beside the checkout");
    }
}
