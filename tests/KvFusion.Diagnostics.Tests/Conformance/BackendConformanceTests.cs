using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Diagnostics.Conformance;
using KvFusion.Engine.SafeTensors;

namespace KvFusion.Diagnostics.Tests.Conformance;

public sealed class BackendConformanceTests
{
    [Fact]
    public void CpuBackendConformsToItselfOnEveryOperation()
    {
        using var dir = new TempDirectory();
        using var candidate = new CpuBackend(1);
        using var reference = new CpuBackend(2);
        using var conformance = new BackendConformance(candidate, reference, dir.Path);
        var results = conformance.RunAll();

        var failed = results.Where(r => !r.Passed).Select(r => $"{r.Operation} {r.Case}: {r.Failure ?? r.RelativeError.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)}").ToList();
        Assert.Empty(failed);
        var operations = results.Select(r => r.Operation).ToHashSet();
        foreach (var op in new[] { "Embed", "RmsNorm", "RmsNormHeads", "MatMul", "ApplyRope", "SiluMultiply", "Add", "ScatterToCache", "GatherFromCache", "ImportHalfToCache", "GatherRows", "CacheDeviation", "SelectTopK", "Attention" })
        {
            Assert.Contains(op, operations);
        }
    }

    [Fact]
    public void AnOperationThatIsOffByMoreThanItsToleranceFails()
    {
        using var dir = new TempDirectory();
        using var reference = new CpuBackend(1);
        using var candidate = new FaultyBackend(new CpuBackend(1)) { BreakSilu = true };
        using var conformance = new BackendConformance(candidate, reference, dir.Path);
        var results = conformance.RunAll();

        Assert.All(results.Where(r => r.Operation == "SiluMultiply"), r => Assert.False(r.Passed));
        Assert.All(results.Where(r => r.Operation != "SiluMultiply"), r => Assert.True(r.Passed, $"{r.Operation} {r.Case}"));
    }

    [Fact]
    public void AnOutputRowTheCandidateNeverWritesIsCountedAsUnwritten()
    {
        using var dir = new TempDirectory();
        using var reference = new CpuBackend(1);
        using var candidate = new FaultyBackend(new CpuBackend(1)) { SkipLastGatherRow = true };
        using var conformance = new BackendConformance(candidate, reference, dir.Path);
        var gather = conformance.RunAll().Single(r => r.Operation == "GatherFromCache");

        Assert.False(gather.Passed);
        Assert.Equal(2 * 64, gather.Unwritten);
    }

    [Fact]
    public void AnOperationThatThrowsIsReportedAsFailedWithItsMessage()
    {
        using var dir = new TempDirectory();
        using var reference = new CpuBackend(1);
        using var candidate = new FaultyBackend(new CpuBackend(1)) { ThrowOnTopK = true };
        using var conformance = new BackendConformance(candidate, reference, dir.Path);
        var topK = conformance.RunAll().Where(r => r.Operation == "SelectTopK").ToList();

        Assert.NotEmpty(topK);
        Assert.All(topK, r => Assert.Contains("top-k is broken", r.Failure, StringComparison.Ordinal));
    }

    /// <summary>A CPU backend with switchable faults.</summary>
    private sealed class FaultyBackend(ComputeBackend inner) : ComputeBackend
    {
        public bool BreakSilu { get; init; }

        public bool SkipLastGatherRow { get; init; }

        public bool ThrowOnTopK { get; init; }

        public override string DeviceName => "faulty " + inner.DeviceName;

        internal override DeviceTensor Allocate(KvFusion.Engine.Models.TensorDType dtype, int rows, int cols) => inner.Allocate(dtype, rows, cols);

        internal override DeviceTensor CreateWeight(SafeTensor source, int rows, int cols) => inner.CreateWeight(source, rows, cols);

        internal override void Upload(ReadOnlySpan<float> source, DeviceTensor destination, int rowOffset) => inner.Upload(source, destination, rowOffset);

        internal override void Upload(ReadOnlySpan<int> source, DeviceTensor destination, int rowOffset) => inner.Upload(source, destination, rowOffset);

        internal override void Download(DeviceTensor source, int rowOffset, int rowCount, Span<float> destination) => inner.Download(source, rowOffset, rowCount, destination);

        internal override void CopyRows(DeviceTensor source, int sourceRow, DeviceTensor destination, int destinationRow, int rowCount) => inner.CopyRows(source, sourceRow, destination, destinationRow, rowCount);

        internal override void Embed(DeviceTensor table, DeviceTensor ids, int count, DeviceTensor output) => inner.Embed(table, ids, count, output);

        internal override void RmsNorm(DeviceTensor x, int rows, DeviceTensor weight, float epsilon, DeviceTensor output) => inner.RmsNorm(x, rows, weight, epsilon, output);

        internal override void RmsNormHeads(DeviceTensor x, int rows, int headDim, DeviceTensor weight, float epsilon) => inner.RmsNormHeads(x, rows, headDim, weight, epsilon);

        internal override void MatMul(DeviceTensor x, int rows, DeviceTensor weight, DeviceTensor? bias, DeviceTensor output, bool accumulate) => inner.MatMul(x, rows, weight, bias, output, accumulate);

        internal override void ApplyRope(DeviceTensor x, int rows, int headDim, DeviceTensor positions, DeviceTensor inverseFrequencies, DeviceTensor output) => inner.ApplyRope(x, rows, headDim, positions, inverseFrequencies, output);

        internal override void SiluMultiply(DeviceTensor gate, DeviceTensor up, int rows, DeviceTensor output)
        {
            inner.SiluMultiply(gate, up, rows, output);
            if (BreakSilu)
            {
                // 1% too large everywhere: far outside float32 tolerance.
                var values = new float[rows * output.Cols];
                inner.Download(output, 0, rows, values);
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] *= 1.01f;
                }

                inner.Upload(values, output, 0);
            }
        }

        internal override void Add(DeviceTensor target, DeviceTensor source, int rows) => inner.Add(target, source, rows);

        internal override void ScatterToCache(DeviceTensor source, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity) => inner.ScatterToCache(source, rows, slots, cache, kvHeads, capacity);

        internal override void ImportHalfToCache(ReadOnlySpan<Half> source, int count, DeviceTensor cache, int kvHeads, int capacity, int firstSlot, DeviceTensor? positions, DeviceTensor? inverseFrequencies) =>
            inner.ImportHalfToCache(source, count, cache, kvHeads, capacity, firstSlot, positions, inverseFrequencies);

        internal override void GatherFromCache(DeviceTensor cache, int kvHeads, int capacity, DeviceTensor slots, int rows, DeviceTensor destination) =>
            inner.GatherFromCache(cache, kvHeads, capacity, slots, SkipLastGatherRow ? rows - 1 : rows, destination);

        internal override void Attention(in AttentionArguments arguments) => inner.Attention(arguments);

        internal override void GatherRows(DeviceTensor source, DeviceTensor indices, int count, DeviceTensor destination) => inner.GatherRows(source, indices, count, destination);

        internal override void CacheDeviation(DeviceTensor fresh, int rows, DeviceTensor slots, DeviceTensor cache, int kvHeads, int capacity, DeviceTensor output) => inner.CacheDeviation(fresh, rows, slots, cache, kvHeads, capacity, output);

        internal override void SelectTopK(DeviceTensor scores, int count, int k, DeviceTensor indices)
        {
            if (ThrowOnTopK)
            {
                throw new InvalidOperationException("top-k is broken");
            }

            inner.SelectTopK(scores, count, k, indices);
        }

        internal override void Synchronize() => inner.Synchronize();

        protected override void Dispose(bool disposing) => inner.Dispose();
    }
}
