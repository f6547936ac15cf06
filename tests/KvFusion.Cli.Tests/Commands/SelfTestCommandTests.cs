using System.Diagnostics;
using System.Text.Json;
using KvFusion.Cuda.Backend;

namespace KvFusion.Cli.Tests.Commands;

[Collection(ConsoleCommands.Name)]
public sealed class SelfTestCommandTests
{
    [Fact]
    public async Task Selftest_of_the_cpu_operations_passes_and_reports_every_check_as_json()
    {
        using var temp = new TempDirectory();
        var json = temp.Combine("selftest.json");

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

    [SkippableFact]
    public async Task Selftest_on_cuda_without_a_device_says_why_it_cannot_run()
    {
        Skip.If(CudaDevices.TryDescribe(0, out _, out var reason), "a CUDA device is present");

        var run = await Kvfusion.RunAsync("selftest", "--device", "cuda", "--ops-only");

        // TryDescribe's reason is "no CUDA device: " followed by the message the command prints.
        run.AssertFailedWith(reason["no CUDA device: ".Length..]);
    }

    [Theory]
    [InlineData("cuda:x", "'cuda:x' is not a CUDA device: use cuda or cuda:N.")]
    [InlineData("tpu", "Unknown device 'tpu'. Available: cpu, cuda, cuda:N.")]
    public async Task An_unknown_device_is_rejected_with_the_devices_there_are(string device, string message) =>
        (await Kvfusion.RunAsync("selftest", "--device", device, "--ops-only")).AssertFailedWith(message);

    [Fact]
    public async Task Bench_kernels_refuses_the_cpu_backend_and_names_the_device_to_use() =>
        (await Kvfusion.RunAsync("bench", "kernels", "--device", "cpu")).AssertFailedWith("bench kernels measures the CUDA backend: use --device cuda.");
}

/// <summary>
/// The CLI run as its own process, so a test reads exactly what a user sees on standard error (the CLI's console
/// writers are bound to the process's streams when first used, which an in-process redirect cannot reach).
/// </summary>
internal sealed record Kvfusion(int ExitCode, string StandardOutput, string StandardError)
{
    public static Task<Kvfusion> RunAsync(params string[] args) => RunInAsync(null, null, args);

    /// <summary>Runs in <paramref name="workingDirectory"/> (where <c>./data</c> and appsettings.json are looked for) with extra environment variables.</summary>
    public static async Task<Kvfusion> RunInAsync(string? workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "kvfusion.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new Kvfusion(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Exit code 1 with the command's own "error: …" line, not an exception's stack trace.</summary>
    public void AssertFailedWith(string message)
    {
        Assert.True(ExitCode == 1, $"exit code {ExitCode}; standard error:\n{StandardError}");
        Assert.DoesNotContain("Unhandled exception", StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", StandardError, StringComparison.Ordinal);

        // Spectre wraps long lines at the console width; compare without whitespace so a wrap cannot fail the test.
        Assert.Contains(Squeeze("error: " + message), Squeeze(StandardError), StringComparison.Ordinal);
    }

    private static string Squeeze(string text) => string.Concat(text.Where(c => !char.IsWhiteSpace(c)));
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCommands
{
    public const string Name = "console commands";
}
