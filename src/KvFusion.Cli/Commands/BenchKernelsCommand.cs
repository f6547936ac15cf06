using System.CommandLine;
using System.Globalization;
using KvFusion.Cuda.Backend;
using KvFusion.Diagnostics.Benchmarks;
using KvFusion.Engine.Models;
using KvFusion.Diagnostics.Synthetic;
using Spectre.Console;

namespace KvFusion.Cli.Commands;

/// <summary>
/// <c>kvfusion bench kernels --device cuda</c>: the GPU backend's prefill GEMMs against cuBLAS's own peak measured in
/// the same run, and its memory-bound kernels against the memory bandwidth, at one model shape.
/// </summary>
internal static class BenchKernelsCommand
{
    public static Command Create()
    {
        var device = CommonOptions.Device();
        device.DefaultValueFactory = _ => "cuda";
        var shape = new Option<string>("--shape") { Description = $"Model shape: {string.Join(", ", ModelShape.Known.Select(s => s.Name))}.", DefaultValueFactory = _ => "llama-3.1-8b" };
        var rows = new Option<int>("--rows") { Description = "Prompt tokens of the prefill GEMMs and elementwise kernels.", DefaultValueFactory = _ => 4096 }.AtLeast(1);
        var context = new Option<int>("--context") { Description = "Keys a decode step attends to.", DefaultValueFactory = _ => 8192 }.AtLeast(1);
        var bandwidth = new Option<double>("--bandwidth-gbs") { Description = "Memory bandwidth ceiling in GB/s (H200: 4300, measured device copy; default: the device's theoretical figure).", DefaultValueFactory = _ => 0 };
        var iterations = new Option<int>("--iterations") { Description = "Timed calls per kernel (after one warm-up).", DefaultValueFactory = _ => 20 };
        var json = new Option<string?>("--json") { Description = "Write the results as JSON to this file." };
        var command = new Command("kernels", "GPU kernels: GEMM share of cuBLAS peak, memory-bound kernels' share of bandwidth.")
        {
            device, shape, rows, context, bandwidth, iterations, json,
        };
        command.SetAction((parse, ct) => CommonOptions.RunAsync(() =>
        {
            var s = CommonOptions.CheckOptions(() => ModelShape.Get(parse.GetValue(shape)!));
            using var backend = CommonOptions.CreateBackend(parse.GetValue(device)!, null) as CudaBackend
                ?? throw new CliException("bench kernels measures the CUDA backend: use --device cuda.");
            var ceiling = parse.GetValue(bandwidth) is > 0 and var gbs ? gbs * 1e9 : backend.Device.TheoreticalBandwidthBytesPerSecond
                ?? throw new CliException("The device does not report its memory bandwidth: give --bandwidth-gbs.");
            var benchShape = new KernelBenchmarkShape(s.HiddenSize, s.IntermediateSize, s.HeadCount, s.KvHeadCount, s.HeadDim,
                parse.GetValue(rows), parse.GetValue(context), TensorDType.BF16);
            var results = new List<KernelBenchmarkResult>();
            CommonOptions.Diagnostics.Status().Start("measuring kernels", status =>
            {
                var progress = new Progress<KernelBenchmarkResult>(r => status.Status($"measured {r.Operation}"));
                results.AddRange(KernelBenchmark.Run(backend, benchShape, ceiling, Path.Combine(Path.GetTempPath(), "kvfusion-bench"), Math.Max(1, parse.GetValue(iterations)), progress));
            });

            var table = new Table().Title($"kernels at {Markup.Escape(s.Name)} shapes on {Markup.Escape(backend.DeviceName)}")
                .AddColumns("operation", "shape", "ms", "achieved", "ceiling", "share", "target");
            foreach (var r in results)
            {
                table.AddRow(
                    Markup.Escape(r.Operation), Markup.Escape(r.Shape),
                    double.IsNaN(r.Milliseconds) ? "-" : r.Milliseconds.ToString("F3", CultureInfo.InvariantCulture),
                    $"{r.Achieved.ToString("F1", CultureInfo.InvariantCulture)} {r.Unit}",
                    $"{r.Ceiling.ToString("F1", CultureInfo.InvariantCulture)} {r.Unit}",
                    r.FractionOfCeiling.ToString("P0", CultureInfo.InvariantCulture),
                    r.Target >= 1 ? "-" : (r.MeetsTarget ? "[green]" : "[red]") + r.Target.ToString("P0", CultureInfo.InvariantCulture) + "[/]");
            }

            AnsiConsole.Write(table);
            if (parse.GetValue(json) is { } path)
            {
                using var report = JsonReport.Create(path, s.Name, backend.DeviceName);
                var w = report.Writer;
                w.WriteNumber("bandwidth_ceiling_gbs", Math.Round(ceiling / 1e9, 1));
                w.WriteStartArray("results");
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    w.WriteString("operation", r.Operation);
                    w.WriteString("shape", r.Shape);
                    if (!double.IsNaN(r.Milliseconds))
                    {
                        w.WriteNumber("ms", Math.Round(r.Milliseconds, 4));
                    }

                    w.WriteNumber("achieved", Math.Round(r.Achieved, 2));
                    w.WriteString("unit", r.Unit);
                    w.WriteNumber("ceiling", Math.Round(r.Ceiling, 2));
                    w.WriteNumber("share", Math.Round(r.FractionOfCeiling, 4));
                    w.WriteNumber("target", r.Target);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                CommonOptions.Diagnostics.MarkupLineInterpolated($"[grey]wrote {path}[/]");
            }

            return Task.FromResult(0);
        }));
        return command;
    }
}
