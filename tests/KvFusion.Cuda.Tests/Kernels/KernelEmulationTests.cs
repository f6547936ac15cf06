using System.Diagnostics;
using System.Runtime.InteropServices;
using KvFusion.Cuda.Tests.Support;

namespace KvFusion.Cuda.Tests.Kernels;

/// <summary>
/// Runs every kernel of kernels/*.cu on the CPU under tests/kernel-emulator (g++, fibers for CUDA threads) against
/// double-precision references: the kernels' logic is checked on machines without a GPU.
/// </summary>
public sealed class KernelEmulationTests
{
    [SkippableFact]
    public void Every_kernel_matches_its_reference_in_the_cpu_emulator()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64, "the emulator's fibers are x86-64 Linux only");
        Skip.IfNot(OnPath("g++") && OnPath("make"), "g++ and make are needed to build the kernel emulator");
        using var build = new TempDirectory();
        var start = new ProcessStartInfo("make", ["-s", "-C", Path.Combine(RepositoryRoot.Path, "tests", "kernel-emulator"), "check", $"BUILD={build.Path}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var make = Process.Start(start)!;
        var stderr = make.StandardError.ReadToEndAsync();
        var stdout = make.StandardOutput.ReadToEnd();
        Assert.True(make.WaitForExit(TimeSpan.FromMinutes(10)), "the emulator run took over 10 minutes");
        var output = stdout + stderr.Result;

        Assert.True(make.ExitCode == 0, $"make check failed ({make.ExitCode}):\n{Tail(output)}");
        Assert.Equal(4, output.Split('\n').Count(l => l.StartsWith("TOTAL pass=", StringComparison.Ordinal) && l.EndsWith(" fail=0", StringComparison.Ordinal)));
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, program)));

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}
