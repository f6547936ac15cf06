using System.Text.Json;
using KvFusion.Cuda.Backend;

namespace KvFusion.Cli.Tests.Commands;

[Collection(ConsoleCommands.Name)]
public sealed class SelfTestCommandTests
{
    [Fact]
    public async Task Selftest_of_the_cpu_operations_passes_and_reports_every_check_as_json()
    {
        var json = Path.Combine(Path.GetTempPath(), $"kvfusion-selftest-{Guid.NewGuid():N}.json");
        try
        {
            var code = await Program.Main(["selftest", "--device", "cpu", "--ops-only", "--json", json]);

            Assert.Equal(0, code);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(json));
            var root = doc.RootElement;
            Assert.Equal(0, root.GetProperty("failed").GetInt32());
            Assert.True(root.GetProperty("checks").GetInt32() > 100);
            var stages = root.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("check").GetString()!).ToList();
            Assert.Contains(stages, s => s.StartsWith("Attention:", StringComparison.Ordinal));
            Assert.Contains(stages, s => s.StartsWith("ImportHalfToCache:", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [SkippableFact]
    public async Task Selftest_on_cuda_without_a_device_fails_with_exit_code_one()
    {
        Skip.If(CudaDevices.TryDescribe(0, out _, out _), "a CUDA device is present");

        Assert.Equal(1, await Program.Main(["selftest", "--device", "cuda", "--ops-only"]));
    }

    [Theory]
    [InlineData("cuda:x")]
    [InlineData("tpu")]
    public async Task An_unknown_device_is_rejected(string device) =>
        Assert.Equal(1, await Program.Main(["selftest", "--device", device, "--ops-only"]));

    [Fact]
    public async Task Bench_kernels_refuses_the_cpu_backend() =>
        Assert.Equal(1, await Program.Main(["bench", "kernels", "--device", "cpu"]));
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCommands
{
    public const string Name = "console commands";
}
