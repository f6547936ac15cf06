using KvFusion.Cuda.Backend;
using KvFusion.Cuda.Tests.Support;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Diagnostics.Conformance;
using KvFusion.Diagnostics.Golden;
using KvFusion.Engine.Transformer;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>Every GPU operation against the CPU backend, and the golden model outputs on the GPU. Skipped without a GPU.</summary>
public sealed class CudaConformanceTests : IClassFixture<CudaBackendFixture>
{
    private readonly CudaBackendFixture _fixture;

    public CudaConformanceTests(CudaBackendFixture fixture) => _fixture = fixture;

    private CudaBackend Backend => _fixture.BackendOrSkip;

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
        var model = SharedModels.Path("tiny-pydocs");
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

    [SkippableFact]
    public void Bad_shapes_are_rejected_on_the_host_before_any_kernel_runs()
    {
        var backend = Backend;
        using var ids = backend.Allocate(KvFusion.Engine.Models.TensorDType.I32, 2, 1);
        using var x = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 2, 6);
        using var narrow = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 2, 4);
        Assert.Throws<ArgumentException>(() => backend.Embed(x, ids, 1, narrow));
        Assert.Throws<ArgumentException>(() => backend.RmsNorm(x, 1, x, 1e-5f, narrow));
        using var odd = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 16, 3);
        Assert.Throws<ArgumentException>(() => backend.ImportHalfToCache(new Half[18], 3, odd, 2, 8, 0, null, null));
        using var cache = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 16, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.ImportHalfToCache(new Half[24], 3, cache, 2, 8, 6, null, null));
        using var kpos = backend.Allocate(KvFusion.Engine.Models.TensorDType.I32, 8, 1);
        using var q = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 1, 8);
        using var fewWeights = backend.Allocate(KvFusion.Engine.Models.TensorDType.F32, 3, 1);
        var args = new KvFusion.Engine.Compute.AttentionArguments(q, 1, ids, cache, cache, kpos, 6, 8, 2, 2, 4, 0.5f, q, fewWeights);
        Assert.Throws<ArgumentException>(() => backend.Attention(args));
        backend.Synchronize();
    }

}
