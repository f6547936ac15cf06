using KvFusion.Engine.Compute;
using KvFusion.Engine.Compute.Cpu;
using KvFusion.Engine.Models;

namespace KvFusion.Engine.Tests.Compute;

/// <summary>MatMul rejects weights and biases it cannot read with an ArgumentException, before it writes anything.</summary>
public sealed class CpuBackendMatMulArgumentTests : IDisposable
{
    private const int Rows = 3;
    private const int In = 8;
    private const int Out = 5;

    private readonly CpuBackend _backend = new(1);
    private readonly DeviceTensor _x;
    private readonly DeviceTensor _weight;
    private readonly DeviceTensor _output;

    public CpuBackendMatMulArgumentTests()
    {
        _x = _backend.Allocate(TensorDType.F32, Rows, In);
        _weight = _backend.Allocate(TensorDType.F32, Out, In);
        _output = _backend.Allocate(TensorDType.F32, Rows, Out);
        _backend.Upload(Enumerable.Repeat(1f, Rows * In).ToArray(), _x, 0);
        _backend.Upload(Enumerable.Repeat(0.5f, Out * In).ToArray(), _weight, 0);
    }

    public void Dispose()
    {
        _x.Dispose();
        _weight.Dispose();
        _output.Dispose();
        _backend.Dispose();
    }

    [Theory]
    [InlineData(Out - 1)]
    [InlineData(Out + 1)]
    [InlineData(1)]
    public void A_bias_whose_length_is_not_the_weights_output_features_is_rejected(int biasLength)
    {
        using var bias = _backend.Allocate(TensorDType.F32, 1, biasLength);
        var e = Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, _weight, bias, _output, accumulate: false));
        Assert.Equal("bias", e.ParamName);
        Assert.Contains($"{biasLength} elements", e.Message, StringComparison.Ordinal);
        Assert.All(Read(_output), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void A_weight_wider_than_the_input_is_rejected()
    {
        using var wide = _backend.Allocate(TensorDType.F32, Out, In + 1);
        var e = Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, wide, null, _output, accumulate: false));
        Assert.Equal("weight", e.ParamName);
    }

    [Fact]
    public void A_weight_with_more_output_features_than_the_output_has_columns_is_rejected()
    {
        using var tall = _backend.Allocate(TensorDType.F32, Out + 1, In);
        var e = Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, tall, null, _output, accumulate: false));
        Assert.Equal("weight", e.ParamName);
    }

    [Fact]
    public void An_integer_weight_or_bias_is_rejected()
    {
        using var ints = _backend.Allocate(TensorDType.I32, Out, In);
        Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, ints, null, _output, accumulate: false));
        using var intBias = _backend.Allocate(TensorDType.I32, 1, Out);
        Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, _weight, intBias, _output, accumulate: false));
        Assert.All(Read(_output), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void A_weight_or_bias_of_another_backend_is_an_argument_error_not_an_invalid_cast()
    {
        using var foreign = new ForeignTensor(Out, In);
        Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, foreign, null, _output, accumulate: false));
        using var foreignBias = new ForeignTensor(1, Out);
        Assert.Throws<ArgumentException>(() => _backend.MatMul(_x, Rows, _weight, foreignBias, _output, accumulate: false));
    }

    [Fact]
    public void A_bias_of_exactly_the_output_features_is_added()
    {
        using var bias = _backend.Allocate(TensorDType.F32, 1, Out);
        _backend.Upload([1f, 2f, 3f, 4f, 5f], bias, 0);
        _backend.MatMul(_x, Rows, _weight, bias, _output, accumulate: false);
        var y = Read(_output);
        for (var r = 0; r < Rows; r++)
        {
            for (var j = 0; j < Out; j++)
            {
                Assert.Equal((0.5f * In) + j + 1, y[(r * Out) + j]);
            }
        }
    }

    private float[] Read(DeviceTensor t)
    {
        var v = new float[t.ElementCount];
        _backend.Download(t, 0, t.Rows, v);
        return v;
    }

    private sealed class ForeignTensor(int rows, int cols) : DeviceTensor(TensorDType.F32, rows, cols)
    {
        protected override void Dispose(bool disposing)
        {
        }
    }
}
