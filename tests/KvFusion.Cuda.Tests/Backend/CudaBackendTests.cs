using KvFusion.Cuda.Backend;
using KvFusion.Cuda.Tests.Support;
using KvFusion.Engine.Compute;
using KvFusion.Engine.Models;

namespace KvFusion.Cuda.Tests.Backend;

/// <summary>The CUDA backend on a real device: transfers, the embedding kernel and its index check. Skipped without a GPU.</summary>
public sealed class CudaBackendTests : IClassFixture<CudaBackendFixture>
{
    private readonly CudaBackendFixture _fixture;

    public CudaBackendTests(CudaBackendFixture fixture) => _fixture = fixture;

    private CudaBackend Backend => _fixture.BackendOrSkip;

    private static float[] Sequence(int n, float scale) => Enumerable.Range(0, n).Select(i => (i + 1) * scale).ToArray();

    [SkippableFact]
    public void The_device_name_describes_the_device_and_libraries()
    {
        var backend = Backend;
        var device = CudaTestEnvironment.Device!;

        Assert.Contains(device.Name, backend.DeviceName, StringComparison.Ordinal);
        Assert.Contains(device.Architecture, backend.DeviceName, StringComparison.Ordinal);
        Assert.Contains("cuBLAS", backend.DeviceName, StringComparison.Ordinal);
        Assert.Contains("NVRTC " + backend.CompilerVersion, backend.DeviceName, StringComparison.Ordinal);
        Assert.Equal(device.Architecture, backend.Device.Architecture);
    }

    [SkippableFact]
    public void An_allocated_tensor_is_zero_filled()
    {
        var backend = Backend;
        using var t = backend.Allocate(TensorDType.F32, 4, 33);

        var host = Enumerable.Repeat(float.NaN, 4 * 33).ToArray();
        backend.Download(t, 0, 4, host);

        Assert.All(host, v => Assert.Equal(0f, v));
        Assert.Equal(4, t.Rows);
        Assert.Equal(33, t.Cols);
    }

    [SkippableFact]
    public void Uploaded_floats_download_unchanged()
    {
        var backend = Backend;
        using var t = backend.Allocate(TensorDType.F32, 7, 129);
        var data = Sequence(7 * 129, 0.25f);

        backend.Upload(data, t, 0);
        var back = new float[data.Length];
        backend.Download(t, 0, 7, back);

        Assert.Equal(data, back);
    }

    [SkippableFact]
    public void Uploads_larger_than_the_staging_buffers_round_trip()
    {
        var backend = Backend;
        var cols = 1024;
        var rows = 3 * (int)(new CudaBackendOptions().StagingBufferBytes / (cols * sizeof(float))) + 5;
        using var t = backend.Allocate(TensorDType.F32, rows, cols);
        var data = Sequence(rows * cols, 1f);

        backend.Upload(data, t, 0);
        var back = new float[data.Length];
        backend.Download(t, 0, rows, back);

        Assert.Equal(data, back);
    }

    [SkippableFact]
    public void Uploads_and_downloads_honour_the_row_offset()
    {
        var backend = Backend;
        using var t = backend.Allocate(TensorDType.F32, 5, 3);

        backend.Upload([1f, 2f, 3f, 4f, 5f, 6f], t, 2);
        var rows = new float[6];
        backend.Download(t, 2, 2, rows);
        var all = new float[15];
        backend.Download(t, 0, 5, all);

        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], rows);
        Assert.Equal([0f, 0f, 0f, 0f, 0f, 0f, 1f, 2f, 3f, 4f, 5f, 6f, 0f, 0f, 0f], all);
    }

    [SkippableFact]
    public void Embed_copies_the_rows_of_the_token_ids()
    {
        var backend = Backend;
        var (table, ids, output) = EmbeddingTensors(backend, [3, 0, 3, 1]);
        using (table)
        using (ids)
        using (output)
        {
            backend.Embed(table, ids, 4, output);
            var result = new float[4 * 8];
            backend.Download(output, 0, 4, result);

            var expected = new[] { 3, 0, 3, 1 }.SelectMany(id => Sequence(4 * 8, 1f).Skip(id * 8).Take(8)).ToArray();
            Assert.Equal(expected, result);
        }
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void An_out_of_range_token_id_is_raised_at_the_next_download(int badId)
    {
        var backend = Backend;
        var (table, ids, output) = EmbeddingTensors(backend, [1, badId, 2]);
        using (table)
        using (ids)
        using (output)
        {
            backend.Embed(table, ids, 3, output);
            var result = new float[3 * 8];

            var e = Assert.Throws<ArgumentOutOfRangeException>(() => backend.Download(output, 0, 3, result));

            Assert.Equal("ids", e.ParamName);
            backend.Synchronize();
            backend.Download(output, 0, 3, result);
            Assert.All(result.AsSpan(8, 8).ToArray(), v => Assert.Equal(0f, v));
        }
    }

    [SkippableFact]
    public void An_out_of_range_token_id_is_raised_at_the_next_synchronize()
    {
        var backend = Backend;
        var (table, ids, output) = EmbeddingTensors(backend, [0, 99]);
        using (table)
        using (ids)
        using (output)
        {
            backend.Embed(table, ids, 2, output);

            var e = Assert.Throws<ArgumentOutOfRangeException>(backend.Synchronize);

            Assert.Equal("ids", e.ParamName);
            backend.Synchronize();
        }
    }

    [SkippableFact]
    public void A_disposed_backend_rejects_work_and_a_second_dispose_does_nothing()
    {
        Skip.If(CudaTestEnvironment.SkipReason is not null, CudaTestEnvironment.SkipReason);
        var backend = CudaBackend.Create(new CudaBackendOptions { CubinCacheDirectory = CudaTestEnvironment.CubinCacheDirectory });

        backend.Dispose();
        backend.Dispose();

        Assert.Throws<ObjectDisposedException>(() => backend.Allocate(TensorDType.F32, 1, 1));
    }

    /// <summary>A 4×8 F32 table holding 1, 2, 3, ... row by row, an id tensor and a 4×8 output.</summary>
    private static (DeviceTensor Table, DeviceTensor Ids, DeviceTensor Output) EmbeddingTensors(CudaBackend backend, int[] idValues)
    {
        var table = backend.Allocate(TensorDType.F32, 4, 8);
        backend.Upload(Sequence(4 * 8, 1f), table, 0);
        var ids = backend.Allocate(TensorDType.I32, idValues.Length, 1);
        backend.Upload(idValues, ids, 0);
        var output = backend.Allocate(TensorDType.F32, 4, 8);
        return (table, ids, output);
    }
}
